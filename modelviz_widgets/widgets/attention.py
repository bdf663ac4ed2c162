"""Attention: every layer and head of a transformer at a glance, one head large, rollout, text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import traitlets
from torch import nn

from ..capture.attention import (
    attention_maps,
    attention_rollout,
    kept_positions,
    strongest_keys,
    thumbnails,
)
from ..capture.layers import check_model
from .attention_inputs import (
    AttentionInputs,
    decoded_text,
    kept_tokens,
    max_tokens,
    prepare,
    token_labels,
)
from .base import ModelWidget, load_bundle

MAX_TOKENS = 65_535  # key indices of the head view travel as uint16


class Attention(ModelWidget):
    """Attention probabilities of a transformer, live.

    An overview of every layer and head as thumbnails (rows are layers, columns heads; click one to
    open it); the open head as a query-by-key matrix, or as lines from each token to the tokens it
    attends to, heads colour-coded; the mean of a layer's heads; and the attention rollout from the
    input through the selected layer. Given a tokenizer, a text box re-runs the model on new text.

    Parameters
    ----------
    model
        A Hugging Face transformers model (BERT family and others with ``output_attentions``), or
        any torch model built from ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``.
    inputs
        The model's input: a tensor (or tuple of positional inputs); a dict of keyword inputs such
        as a tokenizer's ``input_ids`` and ``attention_mask``; or, with ``tokenizer``, a string (or
        a list of strings).
    tokens
        Token strings, one list per sample (or one list for a single sample); by default the
        tokenizer's tokens, else the positions.
    tokenizer
        A transformers tokenizer: turns text into inputs and shows the text box.
    model_kwargs
        Extra keyword arguments of the model's forward, e.g. ``src_key_padding_mask=``.

    Padded positions (keys that get zero attention everywhere) are left out of every picture.
    """

    _esm = load_bundle("attention")

    _selections = frozenset(
        [
            "layer",
            "head",
            "mode",
            "sample",
            "text",
            "lines_per_token",
            "residual",
            "thumbnail_size",
            "encoding",
            "byte_budget",
        ]
    )

    layer = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Selected layer, in the order the layers ran."""

    head = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Selected head of the layer."""

    mode = traitlets.Enum(["head", "mean", "rollout"], default_value="head").tag(
        sync=True, echo_update=False
    )
    """What the matrix shows: one head, the mean of the layer's heads, or the rollout through it."""

    detail = traitlets.Enum(["matrix", "lines"], default_value="matrix").tag(
        sync=True, echo_update=False
    )
    """The large picture: the query-by-key ``"matrix"``, or ``"lines"`` between the tokens."""

    shown_heads = traitlets.List(traitlets.Int()).tag(sync=True, echo_update=False)
    """Heads drawn in the lines view (all by default)."""

    sample = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Sample of the batch shown."""

    n_layers = traitlets.Int(0).tag(sync=True)
    """Number of attention layers."""

    n_heads = traitlets.Int(0).tag(sync=True)
    """Heads per layer."""

    n_samples = traitlets.Int(1).tag(sync=True)
    """Number of samples in the batch."""

    length = traitlets.Int(0).tag(sync=True)
    """Tokens of the sample shown (padding left out)."""

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Token strings of the sample shown, one per position kept."""

    text = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """With a tokenizer: the text shown; setting it re-tokenizes and re-runs the model."""

    editable = traitlets.Bool(False).tag(sync=True)
    """True when a tokenizer was given, so the view offers the text box."""

    max_length = traitlets.Int(512).tag(sync=True)
    """Longest tokenized text; longer text is truncated."""

    thumbnail_size = traitlets.Int(32).tag(sync=True)
    """Side of an overview thumbnail in cells; longer inputs are max-pooled down to it."""

    lines_per_token = traitlets.Int(8).tag(sync=True, echo_update=False)
    """Keys drawn for each query in the lines view: its strongest weights."""

    residual = traitlets.Float(0.5).tag(sync=True)
    """Weight of the identity (the residual path) in the rollout."""

    thumbnails_data = traitlets.Bytes(b"").tag(sync=True)
    """Every layer and head, ``[layers, heads, s, s]``, max-pooled by ``meta.pool``."""

    thumbnails_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``thumbnails_data``."""

    matrix_data = traitlets.Bytes(b"").tag(sync=True)
    """Query by key of the selected head, mean or rollout, ``[length, length]``."""

    matrix_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``matrix_data``."""

    lines_data = traitlets.Bytes(b"").tag(sync=True)
    """The strongest weights of each query in the selected layer, ``[heads, length, k]``."""

    lines_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``lines_data``."""

    lines_keys = traitlets.Bytes(b"").tag(sync=True)
    """Key index of each weight of ``lines_data``, uint16 little-endian."""

    def __init__(
        self,
        model: nn.Module,
        inputs: Any = None,
        tokens: Any = None,
        tokenizer: Any = None,
        model_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model: nn.Module | None = check_model(model)
        self._tokenizer = tokenizer
        self._model_kwargs = dict(model_kwargs or {})
        self._user_tokens = tokens
        self._maps: torch.Tensor | None = None
        self._rollout: torch.Tensor | None = None
        self._kept: torch.Tensor | None = None
        self._shown: tuple[int, torch.Tensor] | None = None
        self._sent: tuple[Any, Any] = (None, None)  # keys of the matrix and lines on screen
        self._labels: list[list[str]] | None = None
        self._ready = False
        limit = max_tokens(model, tokenizer)
        selections = {name: kwargs.pop(name) for name in list(kwargs) if name in self._selections}
        super().__init__(editable=tokenizer is not None, max_length=limit, **kwargs)
        self._inputs = prepare(inputs, tokenizer, self._model_kwargs, self.max_length)
        self._run(self._inputs, tokens)
        # Text as typed (the tokenizer's decoding loses case and spacing); else from the ids.
        typed = inputs if isinstance(inputs, str) else None
        self.set_trait(
            "text", typed if typed is not None else decoded_text(tokenizer, self._inputs)
        )
        self.shown_heads = list(range(self.n_heads))
        for name, value in selections.items():
            setattr(self, name, value)
        self._ready = True
        self._publish_all()

    # -- validation --

    @traitlets.validate("layer", "head", "sample")
    def _valid_index(self, proposal: dict[str, Any]) -> int:
        name = proposal["trait"].name
        count = {"layer": self.n_layers, "head": self.n_heads, "sample": self.n_samples}[name]
        return self._in_range(name, int(proposal["value"]), count)

    @traitlets.validate("shown_heads")
    def _valid_heads(self, proposal: dict[str, Any]) -> list[int]:
        heads = [int(h) for h in proposal["value"]]
        for head in heads:
            self._in_range("head", head, self.n_heads)
        return sorted(set(heads))

    @traitlets.validate("lines_per_token", "thumbnail_size")
    def _valid_count(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise self._refuse(f"{proposal['trait'].name} must be at least 1; got {value}")
        return value

    @traitlets.validate("residual")
    def _valid_residual(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise self._refuse(f"residual must be between 0 and 1; got {value}")
        return value

    @traitlets.validate("text")
    def _valid_text(self, proposal: dict[str, Any]) -> str:
        if self._ready and self._tokenizer is None:
            raise self._refuse(
                "this Attention has no tokenizer, so its text cannot change; create it with "
                "tokenizer=<a transformers tokenizer>, or set new inputs with .inputs = ..."
            )
        return str(proposal["value"])

    # -- answering selections --

    @traitlets.observe("text")
    def _on_text(self, change: dict[str, Any]) -> None:
        if not self._ready:
            return
        try:
            prepared = prepare(change["new"], self._tokenizer, self._model_kwargs, self.max_length)
            self._replace_inputs(prepared, text=change["new"])
        except Exception as error:
            self._fail(error)
            self._ready = False  # keep showing the text whose attention is up
            try:
                self.set_trait("text", change["old"])
            finally:
                self._ready = True
            raise

    @traitlets.observe("layer", "head", "mode", "residual")
    def _on_matrix(self, change: dict[str, Any]) -> None:
        if change["name"] == "residual":
            self._rollout = None
        if self._ready:

            def publish() -> None:
                # Several selections set together (a thumbnail click sets layer, head and mode)
                # notify one by one; what the first one sent already shows the others.
                updates = self._lines_payload() if self._lines_key() != self._sent[1] else {}
                if self._matrix_key() != self._sent[0]:
                    updates.update(self._matrix_payload(budget=self._left(updates)))
                if updates:
                    self._apply(updates)

            self._guarded(publish)

    @traitlets.observe("lines_per_token")
    def _on_lines(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._guarded(lambda: self._apply(self._lines_payload()))

    @traitlets.observe("sample", "thumbnail_size", "encoding", "byte_budget")
    def _on_sample(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._publish_all()

    @property
    def inputs(self) -> Any:
        """The model's inputs; assigning new ones re-runs the model and redraws."""
        prepared = self._inputs
        return prepared.keywords if prepared.positional is None else prepared.positional

    @inputs.setter
    def inputs(self, value: Any) -> None:
        prepared = prepare(value, self._tokenizer, self._model_kwargs, self.max_length)
        self._replace_inputs(prepared, text=value if isinstance(value, str) else None)

    def _replace_inputs(self, prepared: AttentionInputs, text: str | None) -> None:
        """Run on new inputs; ``text`` is the text box's (None: recovered from the new ids)."""
        with self.hold_sync():
            self._run(prepared, None)
            self._inputs = prepared
            self._ready = False  # the text follows the inputs; it is not a request
            try:
                self.text = text if text is not None else decoded_text(self._tokenizer, prepared)
            finally:
                self._ready = True
            self._publish_all()

    def _guarded(self, work: Any) -> None:
        try:
            work()
        except Exception as error:
            self._fail(error)
            raise

    # -- computing --

    def _run(self, prepared: AttentionInputs, tokens: Any) -> None:
        """Run the model; keep its attention and sizes (the old ones stay when it fails)."""
        assert self._model is not None
        try:
            maps = attention_maps(self._model, prepared.positional, **prepared.keywords)
            maps = maps.float().cpu()
            layers, batch, heads, queries, keys = maps.shape
            if queries != keys:
                raise ValueError(
                    f"Attention shows self-attention; these layers attend from {queries} queries "
                    f"to {keys} keys"
                )
            if keys > MAX_TOKENS:
                raise ValueError(f"at most {MAX_TOKENS} tokens can be shown; got {keys}")
            labels = token_labels(
                tokens if tokens is not None else self._user_tokens,
                self._tokenizer, prepared, batch, keys,
            )  # fmt: skip
        except Exception as error:
            self._fail(error)
            raise
        self._maps = maps
        self._labels = labels
        self._user_tokens = tokens if tokens is not None else self._user_tokens
        self._rollout = None
        self._kept = None
        self._shown = None
        self._sent = (None, None)
        with self.hold_sync():
            self.n_layers, self.n_samples, self.n_heads = layers, batch, heads
            self.set_trait("layer", min(self.layer, layers - 1))
            self.set_trait("head", min(self.head, heads - 1))
            self.set_trait("sample", min(self.sample, batch - 1))
            self.set_trait("shown_heads", [h for h in self.shown_heads if h < heads])

    def _sample_maps(self) -> torch.Tensor:
        """``[layers, heads, length, length]`` of the sample shown, padding left out (cached)."""
        if self._shown is not None and self._shown[0] == self.sample:
            return self._shown[1]
        assert self._maps is not None
        maps = self._maps[:, self.sample]
        kept = kept_positions(maps)
        if kept.numel() == 0:
            raise ValueError(f"sample {self.sample} has no attention at all (every weight is 0)")
        if kept.numel() != maps.shape[-1]:
            maps = maps[:, :, kept][:, :, :, kept]
        self._kept = kept
        self._rollout = None
        self._shown = (self.sample, maps)
        return maps

    def _matrix_values(self, maps: torch.Tensor) -> torch.Tensor:
        if self.mode == "head":
            return maps[self.layer, self.head]
        if self.mode == "mean":
            return maps[self.layer].mean(dim=0)
        if self._rollout is None:
            self._rollout = attention_rollout(maps.unsqueeze(1), self.residual)[:, 0]
        return self._rollout[self.layer]

    # -- payloads --

    def _publish_all(self) -> None:
        def publish() -> None:
            maps = self._sample_maps()
            self.length = int(maps.shape[-1])
            self.tokens = self._sample_tokens()
            # One update carries all three pictures and stays within the budget: the lines
            # (never shrunk) first, half of the rest for the thumbnails, the matrix the remainder.
            updates = self._lines_payload(maps)
            updates.update(self._thumbnails_payload(maps, self._left(updates) // 2))
            updates.update(self._matrix_payload(maps, self._left(updates)))
            self._apply(updates)

        with self.hold_sync():
            self._guarded(publish)

    def _sample_tokens(self) -> list[str]:
        assert self._kept is not None and self._maps is not None
        labels = None if self._labels is None else self._labels[self.sample]
        return kept_tokens(labels, self._kept.tolist(), int(self._maps.shape[-1]), self.sample)

    def _matrix_key(self) -> tuple[Any, ...]:
        return (self.sample, self.layer, self.head, self.mode, self.residual)

    def _lines_key(self) -> tuple[Any, ...]:
        return (self.sample, self.layer, self.lines_per_token)

    def _left(self, updates: dict[str, Any]) -> int:
        """What the byte budget leaves after the payloads already in ``updates``."""
        used = sum(len(value) for value in updates.values() if isinstance(value, bytes))
        if used >= self.byte_budget:
            raise ValueError(
                f"byte_budget {self.byte_budget:,} is too small: the lines view alone takes "
                f"{used:,} bytes; raise it or lower lines_per_token"
            )
        return self.byte_budget - used

    def _thumbnails_payload(self, maps: torch.Tensor, budget: int) -> dict[str, Any]:
        small, pool = thumbnails(maps, self.thumbnail_size)
        meta = {"pool": pool}
        return self._payload(
            "thumbnails", small, extra_meta=meta, scale="linear", from_zero=True,
            byte_budget=budget,
        )  # fmt: skip

    def _matrix_payload(
        self, maps: torch.Tensor | None = None, budget: int | None = None
    ) -> dict[str, Any]:
        maps = self._sample_maps() if maps is None else maps
        values = self._matrix_values(maps)
        meta = {
            "layer": self.layer,
            "head": self.head if self.mode == "head" else -1,
            "mode": self.mode,
        }
        budget = self.byte_budget if budget is None else budget
        self._sent = (self._matrix_key(), self._sent[1])
        return self._payload(
            "matrix", values, extra_meta=meta, scale="linear", from_zero=True, byte_budget=budget
        )

    def _lines_payload(self, maps: torch.Tensor | None = None) -> dict[str, Any]:
        maps = self._sample_maps() if maps is None else maps
        weights, keys = strongest_keys(maps[self.layer], self.lines_per_token)
        meta = {"k": int(weights.shape[-1]), "layer": self.layer}
        self._sent = (self._sent[0], self._lines_key())
        # Never shrunk: every row is one query token. k weights per token stay small.
        payload = self._payload(
            "lines", weights, extra_meta=meta, scale="linear", from_zero=True, byte_budget=None
        )
        payload["lines_keys"] = keys.numpy().astype("<u2").tobytes()
        return payload

    @property
    def maps(self) -> np.ndarray:
        """Attention of the sample shown, ``[layers, heads, length, length]`` (padding left out)."""
        return self._sample_maps().numpy().copy()

    def _release(self) -> None:
        self._model = None
        self._tokenizer = None
        self._maps = None
        self._rollout = None
        self._shown = None
        self._inputs = AttentionInputs()
        super()._release()
