"""The Attention view driven as the browser drives it, checked against the models' own attention
(transformers' output_attentions, nn.MultiheadAttention's weights) and numpy written here."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizerFast

import modelviz_widgets as mv
from modelviz_widgets import wire

from ._support import FrontEnd, assert_unchanged, model_snapshot

HOSTILE = "<img src=x onerror=alert(1)>"
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "<b>", "x</b>"]
BERT = dict(
    vocab_size=len(WORDS) + 5,
    hidden_size=16,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=32,
    max_position_embeddings=32,
)


@pytest.fixture(scope="module")
def bert() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(**BERT)).eval()


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    return BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)})


def own_attentions(model: BertModel, **inputs: torch.Tensor) -> np.ndarray:
    """[layers, batch, heads, q, k] from an eager copy of the model, asked for its attentions."""
    eager = BertModel(BertConfig(**BERT, attn_implementation="eager")).eval()
    eager.load_state_dict(model.state_dict())
    with torch.no_grad():
        out = eager(**inputs, output_attentions=True)
    return torch.stack(out.attentions).numpy()


def rollout_reference(maps: np.ndarray, residual: float) -> np.ndarray:
    """Abnar & Zuidema's rollout of one sample [layers, heads, n, n], in float64 loops."""
    layers, _, n, _ = maps.shape
    joint = np.eye(n)
    out = []
    for layer in range(layers):
        mixed = (1 - residual) * maps[layer].astype(np.float64).mean(axis=0) + residual * np.eye(n)
        mixed /= mixed.sum(axis=1, keepdims=True)
        joint = mixed @ joint
        out.append(joint.copy())
    return np.stack(out)


def test_views_equal_the_models_own_attentions_with_padding(bert):
    ids = torch.randint(5, 15, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    expected = own_attentions(bert, input_ids=ids, attention_mask=mask)
    w = mv.Attention(bert, {"input_ids": ids, "attention_mask": mask})
    assert (w.n_layers, w.n_heads, w.n_samples, w.length) == (3, 4, 2, 7)
    np.testing.assert_allclose(w.maps, expected[:, 0], atol=1e-6)
    np.testing.assert_allclose(w.current["matrix"], expected[0, 0, 0], atol=1e-6)
    front = FrontEnd(w)
    front.set(sample=1)  # the padded sample: its two padded positions are left out
    assert w.length == 5 and w.tokens == ["0", "1", "2", "3", "4"]
    np.testing.assert_allclose(w.maps, expected[:, 1, :, :5, :5], atol=1e-6)
    front.set(layer=2, head=3)
    np.testing.assert_allclose(w.current["matrix"], expected[2, 1, 3, :5, :5], atol=1e-6)
    assert (w.matrix_meta["layer"], w.matrix_meta["head"], w.matrix_meta["mode"]) == (2, 3, "head")
    decoded = wire.decode(w.matrix_data, w.matrix_meta)
    assert w.matrix_meta["vmin"] == 0.0
    assert np.abs(decoded - expected[2, 1, 3, :5, :5]).max() <= w.matrix_meta["vmax"] / 254
    front.set(mode="mean")
    np.testing.assert_allclose(
        w.current["matrix"], expected[2, 1, :, :5, :5].mean(axis=0), atol=1e-6
    )
    assert w.matrix_meta["head"] == -1
    w.close()


def test_rollout_equals_an_independent_computation(bert):
    ids = torch.randint(5, 15, (1, 9), generator=torch.Generator().manual_seed(2))
    expected = rollout_reference(own_attentions(bert, input_ids=ids)[:, 0], 0.5)
    w = mv.Attention(bert, {"input_ids": ids}, mode="rollout")
    for layer in range(3):
        w.layer = layer
        np.testing.assert_allclose(w.current["matrix"], expected[layer], atol=1e-5)
    w.residual = 0.0
    np.testing.assert_allclose(w.current["matrix"], rollout_reference(w.maps, 0.0)[2], atol=1e-5)
    # The engine function on a batch of random row-stochastic maps.
    maps = torch.rand(4, 3, 2, 6, 6).softmax(dim=-1)
    ours = mv.attention_rollout(maps, residual=0.3)
    for b in range(3):
        reference = rollout_reference(maps[:, b].numpy(), 0.3)
        np.testing.assert_allclose(ours[:, b].numpy(), reference, atol=1e-5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        mv.attention_rollout(maps, residual=1.5)
    with pytest.raises(ValueError, match="self-attention"):
        mv.attention_rollout(maps[..., :3])
    w.close()


def test_thumbnails_and_lines_against_numpy(bert):
    ids = torch.randint(5, 15, (1, 30), generator=torch.Generator().manual_seed(3))
    w = mv.Attention(bert, {"input_ids": ids}, thumbnail_size=8, lines_per_token=3)
    maps = own_attentions(bert, input_ids=ids)[:, 0]  # [3, 4, 30, 30]
    # Thumbnails: the max over 4 x 4 blocks (the last ones partial), 30 -> 8 cells.
    assert w.thumbnails_meta["pool"] == 4 and w.thumbnails_meta["shape"] == [3, 4, 8, 8]
    padded = np.full((3, 4, 32, 32), -np.inf)
    padded[:, :, :30, :30] = maps
    blocks = padded.reshape(3, 4, 8, 4, 8, 4).max(axis=(3, 5))
    np.testing.assert_allclose(w.current["thumbnails"], blocks, atol=1e-6)
    # Lines: the three strongest keys of every query of the layer, strongest first.
    w.layer = 1
    weights = wire.decode(w.lines_data, w.lines_meta)
    keys = np.frombuffer(w.lines_keys, dtype="<u2").reshape(4, 30, 3)
    assert w.lines_meta["k"] == 3 and w.lines_meta["layer"] == 1
    order = np.argsort(-maps[1], axis=-1, kind="stable")[:, :, :3]
    np.testing.assert_array_equal(keys, order)
    np.testing.assert_allclose(
        w.current["lines"], np.take_along_axis(maps[1], order, axis=-1), atol=1e-6
    )
    assert np.abs(weights - w.current["lines"]).max() <= w.lines_meta["vmax"] / 254
    w.close()


def test_text_box_reruns_the_model_with_the_tokenizer(bert, tokenizer):
    w = mv.Attention(bert, "The cat  sat on a mat", tokenizer=tokenizer)
    assert w.editable and w.text == "The cat  sat on a mat"  # as typed
    assert w.tokens == ["[CLS]", "the", "cat", "sat", "on", "a", "mat", "[SEP]"]
    front = FrontEnd(w)
    front.set(text="a dog ran")
    assert w.tokens == ["[CLS]", "a", "dog", "ran", "[SEP]"] and w.length == 5
    encoded = tokenizer("a dog ran", return_tensors="pt")
    np.testing.assert_allclose(w.maps, own_attentions(bert, **encoded)[:, 0], atol=1e-6)
    update = front.updates()[-1]
    assert {"tokens", "thumbnails_data", "matrix_data", "lines_data"} <= set(update)
    w.text = "the dog sat"
    expected = tokenizer.convert_ids_to_tokens(tokenizer("the dog sat")["input_ids"])
    assert w.tokens == expected and w.length == len(expected)
    with pytest.raises(ValueError, match="empty"):
        w.text = "   "
    assert w.text == "the dog sat" and w.tokens == expected and "empty" in w.error
    w.inputs = tokenizer(["a cat", "the mat"], return_tensors="pt", padding=True)
    assert w.n_samples == 2 and w.text == "a cat" and w.error == ""
    assert w.tokens == ["[CLS]", "a", "cat", "[SEP]"]
    w.close()


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


def test_torch_encoder_with_padding_tokens_and_hygiene():
    torch.manual_seed(4)
    model = Encoder()
    model.train()
    x = torch.randn(2, 6, 16)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    before = model_snapshot(model)
    tokens = [[HOSTILE, *"abcde"], list("uvwxyz")]
    w = mv.Attention(model, x, tokens=tokens, model_kwargs={"padding": padding})
    assert w.tokens == tokens[0] and (w.n_layers, w.n_heads) == (2, 2)
    w.sample = 1
    assert w.tokens == list("uvwx") and w.length == 4
    inputs = []
    handles = [
        layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0].detach()))
        for layer in model.encoder.layers
    ]
    model.eval()
    model(x, padding)  # with autograd on, the encoder takes its plain (not nested-tensor) path
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        _, expected = model.encoder.layers[1].self_attn(
            inputs[1], inputs[1], inputs[1], key_padding_mask=padding,
            average_attn_weights=False,
        )  # fmt: skip
    model.train()
    w.layer, w.head = 1, 1
    np.testing.assert_allclose(w.current["matrix"], expected[1, 1, :4, :4].numpy(), atol=1e-6)
    w.close()
    gc.collect()
    assert_unchanged(model, before)


def test_bad_input_and_refused_selections_are_clear(bert):
    with pytest.raises(ValueError, match="looked for nn.MultiheadAttention"):
        mv.Attention(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="need a tokenizer"):
        mv.Attention(bert, "some text")
    ids = torch.randint(5, 15, (1, 6))
    with pytest.raises(ValueError, match="5 tokens but the attention covers 4"):
        mv.Attention(bert, {"input_ids": ids[:, :4]}, tokens=list("abcde"))
    w = mv.Attention(bert, {"input_ids": ids})
    front = FrontEnd(w)
    front.set(layer=3)  # ipywidgets logs the refusal; the kernel keeps running
    assert w.layer == 0 and "layer 3 is out of range; valid values are 0..2" in w.error
    front.set(head=2)  # a valid selection clears the error
    assert w.error == "" and w.head == 2
    front.set(text="hello")
    assert w.text == "" and "no tokenizer" in w.error
    with pytest.raises(ValueError, match="valid values are 0..3"):
        w.shown_heads = [0, 7]
    with pytest.raises(TypeError, match="unexpected keyword"):
        mv.Attention(bert, {"input_ids": ids}, colour="red")
    w.close()


def test_every_update_stays_within_the_byte_budget(bert):
    ids = torch.randint(5, 15, (1, 32), generator=torch.Generator().manual_seed(5))
    w = mv.Attention(bert, {"input_ids": ids}, byte_budget=4500)
    front = FrontEnd(w)
    for change in ({"layer": 1}, {"head": 2}, {"mode": "rollout"}, {"layer": 2}, {"sample": 0}):
        front.set(**change)
    w.byte_budget = 4400  # republishes everything
    sizes = []
    for update in front.updates():
        sent = sum(len(v) for k, v in update.items() if k.endswith("_data") or k == "lines_keys")
        assert sent <= update.get("byte_budget", 4500), (sorted(update), sent)
        sizes.append(sent)
    assert max(sizes) > 3000  # the budget was what limited them
    # Lines (3 kB here) are never shrunk; the thumbnails and the matrix shrank to fit.
    assert w.thumbnails_meta["downsampled"] and w.matrix_meta["downsampled"]
    assert w.matrix_meta["original_shape"] == [32, 32]
    with pytest.raises(ValueError, match="too small"):
        w.byte_budget = 2000
    w.close()


def test_one_message_per_click_and_nan_survives_the_thumbnails(bert):
    ids = torch.randint(5, 15, (1, 12), generator=torch.Generator().manual_seed(6))
    w = mv.Attention(bert, {"input_ids": ids}, thumbnail_size=4)
    front = FrontEnd(w)
    front.set(layer=2, head=1, mode="mean", detail="matrix")  # what a thumbnail click sends
    payloads = [u for u in front.updates() if "matrix_data" in u]
    assert len(payloads) == 1, [sorted(u) for u in front.updates()]
    assert (w.matrix_meta["layer"], w.matrix_meta["mode"]) == (2, "mean")
    # A NaN weight (a broken model) shows as NaN in its thumbnail's block, not as a small value.
    from modelviz_widgets.capture.attention import thumbnails

    maps = torch.rand(2, 2, 12, 12)
    maps[1, 0, 5, 7] = torch.nan
    small, pool = thumbnails(maps, 4)
    assert pool == 3 and small.shape == (2, 2, 4, 4)
    assert torch.isnan(small[1, 0, 1, 2]) and torch.isnan(small).sum() == 1
    w.close()


def test_the_same_refusal_twice_is_said_twice(bert):
    ids = torch.randint(5, 15, (1, 6), generator=torch.Generator().manual_seed(7))
    w = mv.Attention(bert, {"input_ids": ids})
    front = FrontEnd(w)
    front.set(layer=9)
    first = [u["error"] for u in front.updates() if "error" in u]
    front.set(layer=9)  # a view waiting for an answer must hear one again
    errors = [u["error"] for u in front.updates() if "error" in u]
    assert first and first[-1].startswith("layer 9 is out of range")
    assert errors[len(first) :] == ["", first[-1]]
    w.close()
