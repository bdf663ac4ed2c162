"""token_attribution against captum's Saliency and LayerIntegratedGradients on the embedding."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerIntegratedGradients, Saliency
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modelviz_widgets.capture.tokens import token_attribution

from ._support import assert_unchanged, model_snapshot
from .test_recurrent import Tagger


@pytest.fixture
def tagged() -> tuple[Tagger, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(11)
    model = Tagger("LSTM", 2, True, True).eval()
    tokens = torch.randint(1, 20, (3, 6))
    return model, (tokens, torch.tensor([6, 4, 2]))


def from_embeddings(model: Tagger):
    """The model's forward from the embedding output on, for captum's input-space Saliency."""

    def forward(embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        out = pad_packed_sequence(model.rnn(packed)[0], batch_first=True)[0]
        return model.head(out.mean(dim=1))

    return forward


def test_gradient_equals_captum_saliency_on_the_embeddings(tagged):
    model, (tokens, lengths) = tagged
    ours = token_attribution(model, (tokens, lengths), target=1)
    with torch.no_grad():
        embedded = model.embed(tokens)
    reference = Saliency(from_embeddings(model)).attribute(
        embedded.requires_grad_(True), target=1, additional_forward_args=(lengths,)
    )
    expected = reference.norm(dim=-1)
    assert (ours - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize("steps", [16, 50])
def test_integrated_gradients_equal_captum_layer_ig(tagged, steps):
    model, (tokens, lengths) = tagged
    ours = token_attribution(
        model, (tokens, lengths), target=[0, 2, 1], method="integrated_gradients", steps=steps
    )
    reference = LayerIntegratedGradients(model, model.embed).attribute(
        tokens,
        baselines=torch.zeros_like(tokens),
        target=[0, 2, 1],
        additional_forward_args=(lengths,),
        n_steps=steps,
    )
    expected = reference.sum(dim=-1)
    assert (ours - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_integrated_gradients_are_complete(tagged):
    model, (tokens, lengths) = tagged
    ours = token_attribution(model, (tokens, lengths), target=2, method="integrated_gradients",
                             steps=64)  # fmt: skip
    with torch.no_grad():
        gap = model(tokens, lengths)[:, 2] - model(torch.zeros_like(tokens), lengths)[:, 2]
    torch.testing.assert_close(ours.sum(dim=1), gap, rtol=0.01, atol=1e-6)


def test_model_left_unchanged(tagged):
    model, inputs = tagged
    model.train()
    before = model_snapshot(model)
    token_attribution(model, inputs)
    token_attribution(model, inputs, method="integrated_gradients", steps=4)
    assert_unchanged(model, before)


def test_bad_input_is_named(tagged):
    model, inputs = tagged
    with pytest.raises(ValueError, match="valid methods are"):
        token_attribution(model, inputs, method="lime")
    with pytest.raises(ValueError, match="no nn.Embedding"):
        token_attribution(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="baseline_token 99 is out of range; valid ids are 0..19"):
        token_attribution(model, inputs, method="integrated_gradients", baseline_token=99)
    with pytest.raises(ValueError, match="valid targets are 0..2"):
        token_attribution(model, inputs, target=5)


def test_an_embedding_used_twice_is_refused():
    class Siamese(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(a).mean(1) - self.embed(b).mean(1))

    pair = (torch.randint(0, 10, (1, 3)), torch.randint(0, 10, (1, 3)))
    with pytest.raises(ValueError, match="ran more than once"):
        token_attribution(Siamese(), pair)
