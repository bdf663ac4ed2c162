"""Inputs of the Attention view: text through a tokenizer, keyword inputs, token labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class AttentionInputs:
    """How to call the model: positional inputs and keyword arguments; and the token ids."""

    positional: Any = None
    keywords: dict[str, Any] = field(default_factory=dict)

    def token_ids(self) -> torch.Tensor | None:
        """``[batch, tokens]`` integer ids, when the inputs carry them."""
        ids = self.keywords.get("input_ids", self.positional)
        if isinstance(ids, (tuple, list)) and ids:
            ids = ids[0]
        if isinstance(ids, torch.Tensor) and not ids.is_floating_point() and ids.dim() in (1, 2):
            return ids if ids.dim() == 2 else ids.unsqueeze(0)
        return None


def is_text(inputs: Any) -> bool:
    return isinstance(inputs, str) or (
        isinstance(inputs, (list, tuple))
        and bool(inputs)
        and all(isinstance(s, str) for s in inputs)
    )


def max_tokens(model: nn.Module, tokenizer: Any) -> int:
    """Longest text the model takes: its position table, capped by the tokenizer's own limit."""
    config = getattr(model, "config", None)
    limit = int(getattr(config, "max_position_embeddings", 512) or 512)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
        limit = tokenizer_limit
    return limit


def tokenize(tokenizer: Any, text: Any, max_length: int) -> dict[str, Any]:
    """The tokenizer's tensors for ``text`` (one string or a list, padded to a batch)."""
    if tokenizer is None:
        raise ValueError("text inputs need a tokenizer: pass tokenizer=<a transformers tokenizer>")
    batch = [text] if isinstance(text, str) else list(text)
    if not all(s.strip() for s in batch):
        raise ValueError("the text is empty; type a sentence to see its attention")
    encoded = tokenizer(
        batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length
    )
    return dict(encoded)


def prepare(
    inputs: Any, tokenizer: Any, model_kwargs: Mapping[str, Any] | None, max_length: int
) -> AttentionInputs:
    """Sort ``inputs`` into positional and keyword arguments of the model."""
    extra = dict(model_kwargs or {})
    if is_text(inputs):
        return AttentionInputs(None, {**tokenize(tokenizer, inputs, max_length), **extra})
    if isinstance(inputs, Mapping):
        return AttentionInputs(None, {**dict(inputs), **extra})
    if inputs is None and not extra:
        raise ValueError(
            "no inputs: pass a tensor (or tuple) of model inputs, a dict of keyword inputs such "
            "as input_ids= and attention_mask=, or text together with tokenizer="
        )
    return AttentionInputs(inputs, extra)


def decoded_text(tokenizer: Any, prepared: AttentionInputs) -> str:
    """The first sample's text, recovered from its ids (what the text box starts with)."""
    ids = prepared.token_ids()
    if tokenizer is None or ids is None:
        return ""
    return str(tokenizer.decode(ids[0].tolist(), skip_special_tokens=True))


def token_labels(
    tokens: Any, tokenizer: Any, prepared: AttentionInputs, batch: int, length: int
) -> list[list[str]] | None:
    """One list of token strings per sample (each as long as the padded input or as its real
    tokens), from ``tokens`` or the tokenizer; None when neither is there."""
    if tokens is None:
        ids = prepared.token_ids()
        if tokenizer is None or ids is None:
            return None
        return [list(map(str, tokenizer.convert_ids_to_tokens(row.tolist()))) for row in ids]
    rows = list(tokens)
    if rows and all(isinstance(token, str) for token in rows):
        rows = [rows]
    if len(rows) != batch:
        raise ValueError(f"got tokens for {len(rows)} sequences, but the batch has {batch}")
    for index, row in enumerate(rows):
        if isinstance(row, str) or not all(isinstance(token, str) for token in row):
            raise TypeError("tokens must be a list of strings, or one such list per sequence")
        if len(row) > length:
            raise ValueError(
                f"sequence {index} has {len(row)} tokens but the attention covers {length} "
                "positions; pass one token per position"
            )
    return [list(row) for row in rows]


def kept_tokens(labels: list[str] | None, kept: list[int], padded: int, sample: int) -> list[str]:
    """The token strings of the positions kept (padding left out); positions when unlabelled."""
    if labels is None:
        return [str(position) for position in kept]
    if len(labels) == padded:
        return [labels[position] for position in kept]
    if len(labels) == len(kept):
        return list(labels)
    raise ValueError(
        f"sample {sample} has {len(labels)} tokens but {len(kept)} positions with attention "
        f"({padded} with padding); pass one token per position"
    )
