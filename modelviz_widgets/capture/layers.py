"""What a model is made of: named layers, their kind, output shape and parameter count."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

KINDS: tuple[str, ...] = (
    "conv",
    "linear",
    "recurrent",
    "attention",
    "norm",
    "activation",
    "pool",
    "embedding",
    "dropout",
    "container",
    "other",
)

# Checked in order: MultiheadAttention lives in torch.nn.modules.activation, so it comes first.
_KIND_TYPES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("attention", (nn.MultiheadAttention,)),
    ("conv", (nn.modules.conv._ConvNd,)),
    ("linear", (nn.Linear, nn.Bilinear, nn.LazyLinear)),
    ("recurrent", (nn.RNNBase, nn.RNNCellBase)),
    (
        "norm",
        (
            nn.modules.batchnorm._NormBase,
            nn.LayerNorm,
            nn.GroupNorm,
            nn.LocalResponseNorm,
            nn.RMSNorm,
        ),
    ),
    (
        "pool",
        (
            nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._AdaptiveMaxPoolNd,
            nn.modules.pooling._AdaptiveAvgPoolNd,
            nn.modules.pooling._LPPoolNd,
        ),
    ),
    ("embedding", (nn.Embedding, nn.EmbeddingBag)),
    ("dropout", (nn.modules.dropout._DropoutNd,)),
)

# Layers whose outputs are maps over space or time, offered first by the feature-map view.
SPATIAL_KINDS = ("conv", "pool", "norm", "activation")


@dataclass(frozen=True)
class LayerInfo:
    """One named submodule of a model.

    Attributes
    ----------
    name
        The ``named_modules()`` name, e.g. ``"features.3"``.
    kind
        One of ``conv, linear, recurrent, attention, norm, activation, pool, embedding, dropout,
        container, other``.
    module_type
        The class name, e.g. ``"Conv2d"``.
    output_shape
        Shape of the layer's output on the example input (the first tensor of a tuple output), or
        ``None`` without an example input or when the layer did not run.
    n_params
        Parameters owned by this module and its children.
    """

    name: str
    kind: str
    module_type: str
    output_shape: tuple[int, ...] | None
    n_params: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "module_type": self.module_type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "n_params": self.n_params,
        }


def layer_kind(module: nn.Module) -> str:
    """Classify a module into one of :data:`KINDS`."""
    for kind, types in _KIND_TYPES:
        if isinstance(module, types):
            return kind
    if type(module).__module__ == "torch.nn.modules.activation":
        return "activation"
    if "attention" in type(module).__name__.lower():
        return "attention"
    if next(module.children(), None) is not None:
        return "container"
    return "other"


_warned: weakref.WeakSet[nn.Module] = weakref.WeakSet()
"""Compiled models already warned about."""


def check_model(model: Any) -> nn.Module:
    """``model`` itself, after checking that it is a module; warns when it is ``torch.compile``'d.

    Every public widget and function passes its model through here: the one place that says,
    once per compiled model, that compiled code may skip the hooks a view is drawn from
    (pytorch/pytorch#117758)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(getattr(model, "_orig_mod", None), nn.Module) and model not in _warned:
        _warned.add(model)
        warnings.warn(
            f"the model is torch.compile'd ({type(model).__name__}): compiled code may skip the "
            "hooks modelviz_widgets draws from, so a view can come out empty or stale; pass "
            "model._orig_mod (the module it wraps, which shares its parameters) instead",
            UserWarning,
            stacklevel=3,
        )
    return model


def named_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All submodules by name, the root excluded."""
    return {name: module for name, module in model.named_modules() if name}


def resolve_layers(model: nn.Module, layers: str | Iterable[str]) -> dict[str, nn.Module]:
    """Look layer names up, raising ``ValueError`` with the valid names for an unknown one."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("no layers given; pass a layer name or a list of them")
    available = named_layers(model)
    resolved: dict[str, nn.Module] = {}
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"layer names are strings, got {type(name).__name__}: {name!r}")
        if name not in available:
            raise ValueError(unknown_layer_message(name, available))
        resolved[name] = available[name]
    return resolved


def unknown_layer_message(name: str, available: Iterable[str]) -> str:
    valid = list(available)
    return f"unknown layer {name!r}; valid layer names are: {', '.join(valid) or '(none)'}"


def first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor itself, or the first tensor inside a tuple/list output (RNNs return tuples) or
    a mapping's values (transformers' ``ModelOutput``)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def layers(model: nn.Module, example_input: Any = None) -> list[LayerInfo]:
    """List a model's named layers.

    Parameters
    ----------
    model
        Any ``nn.Module``.
    example_input
        Optional input for one dry run (eval mode, no gradients, model state restored) that fills in
        each layer's ``output_shape``. A tensor, or a tuple/list of positional arguments.

    Returns
    -------
    list of LayerInfo
        In ``named_modules()`` order, the root module excluded.
    """
    from .hooks import dry_run

    check_model(model)
    shapes: dict[str, tuple[int, ...] | None] = {}
    if example_input is not None:
        shapes = {name: shape for name, (shape, _) in dry_run(model, example_input).items()}
    return [
        LayerInfo(
            name=name,
            kind=layer_kind(module),
            module_type=type(module).__name__,
            output_shape=shapes.get(name),
            n_params=sum(parameter.numel() for parameter in module.parameters()),
        )
        for name, module in named_layers(model).items()
    ]


def spatial_first(infos: Sequence[LayerInfo]) -> list[LayerInfo]:
    """Order layers for a feature-map picker: convolution-like layers with maps over space or time
    first, in model order, then the rest (containers and dropout left out)."""
    drawable = [info for info in infos if info.kind not in ("container", "dropout")]

    def is_map(info: LayerInfo) -> bool:
        has_axes = info.output_shape is None or len(info.output_shape) >= 3
        return info.kind in SPATIAL_KINDS and has_axes

    return [info for info in drawable if is_map(info)] + [
        info for info in drawable if not is_map(info)
    ]
