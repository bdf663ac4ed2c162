"""attention_maps against the models' own attention weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from modelviz_widgets.capture.attention import attention_maps

from ._support import assert_unchanged, model_snapshot

BERT = dict(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=32,
    max_position_embeddings=32,
)


def test_bert_equals_its_own_output_attentions_with_padding():
    torch.manual_seed(0)
    model = BertModel(BertConfig(**BERT)).eval()  # the default, fused attention
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    before = model_snapshot(model)
    ours = attention_maps(model, input_ids=ids, attention_mask=mask)

    reference_model = BertModel(BertConfig(**BERT, attn_implementation="eager")).eval()
    reference_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        out = reference_model(input_ids=ids, attention_mask=mask, output_attentions=True)
    expected = torch.stack(out.attentions)
    assert ours.shape == (3, 2, 4, 7, 7)
    assert (ours - expected).abs().max() <= 1e-6
    assert torch.all(ours[:, 1, :, :, 5:] == 0)  # padded keys get no attention
    # transformers installs output-capturing hooks of its own the first time attentions are asked
    # for, and keeps them (as it would for the user's own call); none of ours may remain.
    after = model_snapshot(model)
    for name, dicts in after["hooks"].items():
        for attr, hooks in dicts.items():
            for key, hook in hooks.items():
                if key not in before["hooks"][name][attr]:
                    assert hook.__module__.startswith("transformers"), (name, attr, hook)
    before["hooks"] = after["hooks"]
    assert_unchanged(model, before)
    assert model.config.output_attentions is False
    assert model.config._attn_implementation != "eager"  # the model's own setting is back


class Encoder(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_equals_multihead_attention_weights(batch_first):
    torch.manual_seed(1)
    model = Encoder(batch_first).eval()
    x = torch.randn(3, 6, 16) if batch_first else torch.randn(6, 3, 16)
    padding = torch.zeros(3, 6, dtype=torch.bool)
    padding[0, 4:] = True
    padding[2, 2:] = True
    nested = model.encoder.use_nested_tensor
    ours = attention_maps(model, (x, padding))

    # Reference: each layer's input, caught by an independent hook (with grad on, so the encoder
    # takes its plain path), and its attention module asked directly for per-head weights.
    inputs = []
    handles = [
        layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0].detach()))
        for layer in model.encoder.layers
    ]
    model(x, padding)
    for handle in handles:
        handle.remove()
    expected = []
    with torch.no_grad():
        for layer, src in zip(model.encoder.layers, inputs, strict=True):
            _, weights = layer.self_attn(
                src, src, src, key_padding_mask=padding, need_weights=True,
                average_attn_weights=False,
            )  # fmt: skip
            expected.append(weights)
    expected = torch.stack(expected)
    assert ours.shape == (2, 3, 4, 6, 6)
    assert (ours - expected).abs().max() <= 1e-6
    assert torch.all(ours[:, 2, :, :, 2:] == 0)
    assert model.encoder.use_nested_tensor is nested
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_positional_need_weights_false_is_overridden():
    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, None, False)[0]

    torch.manual_seed(2)
    model = Plain().eval()
    x = torch.randn(5, 2, 8)
    ours = attention_maps(model, x)
    with torch.no_grad():
        expected = model.attn(x, x, x, need_weights=True, average_attn_weights=False)[1]
    torch.testing.assert_close(ours[0], expected, atol=1e-6, rtol=0)


def test_model_left_unchanged_and_errors_are_clear():
    model = Encoder(True)
    model.train()
    before = model_snapshot(model)
    attention_maps(model, torch.randn(2, 3, 16))
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match="looked for nn.MultiheadAttention"):
        attention_maps(nn.Linear(2, 2), torch.zeros(1, 2))
