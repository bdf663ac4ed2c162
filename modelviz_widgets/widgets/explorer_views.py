"""The specialist views an Explorer opens beside its model tree: which view fits a layer, and one
lazily built instance of each, kept in step with the Explorer's sample and target."""

from __future__ import annotations

from typing import Any

import ipywidgets
import torch
from torch import nn

from ..capture.hooks import split_call
from ..capture.layers import layer_kind
from .composite import close_tree

VIEW_KINDS = ("feature_maps", "hidden_states", "attention", "none")
"""What the right-hand pane can show for a layer."""


def attention_layers(model: nn.Module) -> list[str]:
    """Attention modules in model order, innermost only (a transformers ``BertAttention`` holds a
    ``BertSelfAttention``; the inner one is the layer): index ``i`` is layer ``i`` of
    :func:`modelviz_widgets.attention_maps`."""
    names = [name for name, module in model.named_modules() if name and _is_attention(module)]
    return [name for name in names if not any(other.startswith(name + ".") for other in names)]


def _is_attention(module: nn.Module) -> bool:
    if isinstance(module, nn.MultiheadAttention):
        return True
    return layer_kind(module) == "attention" and "output" not in type(module).__name__.lower()


def view_for(module: nn.Module, name: str, attention: list[str], has_tensor_output: bool) -> str:
    """The view that fits a layer: hidden states for recurrent layers, attention for attention
    modules (and their containers), feature maps for any layer with a tensor output."""
    if isinstance(module, nn.RNNBase):
        return "hidden_states"
    if any(inner == name or inner.startswith(name + ".") for inner in attention) and (
        _is_attention(module) or layer_kind(module) == "attention"
    ):
        return "attention"
    return "feature_maps" if has_tensor_output else "none"


def attention_index(name: str, attention: list[str]) -> int:
    """The attention layer index of a module (its first inner attention module for a container)."""
    for index, inner in enumerate(attention):
        if inner == name or inner.startswith(name + "."):
            return index
    raise ValueError(f"{name!r} holds no attention module; attention layers: {attention}")


class ViewSet:
    """One instance of each specialist view, created the first time it is needed.

    The Explorer calls :meth:`show` with the selected layer and receives the widgets to lay out;
    :meth:`set_sample` and :meth:`set_target` reach every view already open.
    """

    def __init__(self, model: nn.Module, inputs: Any, tokens: Any = None) -> None:
        self.model = model
        self.inputs = inputs
        self.tokens = tokens
        self.views: dict[str, Any] = {}
        self.attention = attention_layers(model)
        self.sample = 0
        self.target: int | None = None

    def show(self, kind: str, layer: str) -> list[ipywidgets.Widget]:
        """The widgets showing ``layer`` with the view ``kind`` (built on first use)."""
        if kind == "feature_maps":
            view = self._get("feature_maps", lambda: _feature_maps(self.model, self.inputs, layer))
            if view.layer != layer:
                view.layer = layer
            shown = [view]
            module = dict(self.model.named_modules(remove_duplicate=False))[split_call(layer)[0]]
            if isinstance(module, nn.Conv2d) and module.weight.shape[1] * 9 >= 1:
                base = split_call(layer)[0]
                filters = self._get("filters", lambda: _filters(self.model, base))
                if filters.layer != base:
                    filters.layer = base
                shown.append(filters)
            return shown
        layer = split_call(layer)[0]  # the other views show a module's last call
        if kind == "hidden_states":
            view = self._get(
                "hidden_states", lambda: _hidden_states(self.model, self.inputs, self.tokens, layer)
            )
            if view.layer != layer:
                view.layer = layer
            return [view]
        if kind == "attention":
            view = self._get("attention", lambda: _attention(self.model, self.inputs, self.tokens))
            index = attention_index(layer, self.attention)
            if view.layer != index:
                view.layer = index
            return [view]
        return []

    def saliency(self) -> Any:
        """The Saliency view (built on first use)."""
        return self._get("saliency", lambda: _saliency(self.model, self.inputs, self.target))

    def _get(self, key: str, build: Any) -> Any:
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = build()
            self._sync(view)
        return view

    def _sync(self, view: Any) -> None:
        core = getattr(view, "core", view)
        names = core.trait_names()
        fits = self.sample < getattr(core, "n_samples", 1)
        if "sample" in names and fits and core.sample != self.sample:
            core.sample = self.sample
        if "target" in core.trait_names() and core.target != self.target:
            n_classes = getattr(core, "n_classes", 0)
            if self.target is None or self.target < n_classes:
                core.target = self.target

    def set_sample(self, sample: int) -> None:
        self.sample = sample
        for view in self.views.values():
            self._sync(view)

    def set_target(self, target: int | None) -> None:
        self.target = target
        for view in self.views.values():
            self._sync(view)

    @property
    def open_views(self) -> dict[str, Any]:
        return dict(self.views)

    def close(self) -> None:
        for view in self.views.values():
            view.close()
            close_tree(view)
        self.views.clear()


def _feature_maps(model: nn.Module, inputs: Any, layer: str) -> Any:
    from .feature_maps import FeatureMaps

    return FeatureMaps(model, inputs, layer=layer)


def _filters(model: nn.Module, layer: str) -> Any:
    from .filters import Filters

    return Filters(model, layer=layer)


def _hidden_states(model: nn.Module, inputs: Any, tokens: Any, layer: str) -> Any:
    from .hidden_states import HiddenStates

    return HiddenStates(model, inputs, tokens=tokens, layer=layer)


def _attention(model: nn.Module, inputs: Any, tokens: Any) -> Any:
    from .attention import Attention

    return Attention(model, inputs, tokens=tokens)


def _saliency(model: nn.Module, inputs: Any, target: int | None) -> Any:
    from .saliency import Saliency

    return Saliency(model, inputs, target=target, method="saliency")


def float_inputs(inputs: Any) -> bool:
    """Whether saliency (gradients with respect to the inputs) applies."""
    return isinstance(inputs, torch.Tensor) and inputs.is_floating_point()
