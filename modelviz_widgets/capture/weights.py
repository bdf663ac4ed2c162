"""Convolution filters as pictures: which layers have them, their weights, norms and histograms.

Reading weights never touches the model: everything here works on detached copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .layers import check_model, named_layers

DEFAULT_BINS = 30
"""Histogram bins of :func:`histogram_edges` unless asked otherwise."""


def conv_layers(model: nn.Module) -> dict[str, nn.modules.conv._ConvNd]:
    """Every convolution layer of the model by ``named_modules()`` name, in model order."""
    check_model(model)
    return {
        name: module
        for name, module in named_layers(model).items()
        if isinstance(module, nn.modules.conv._ConvNd)
    }


def conv_layer(model: nn.Module, name: str) -> nn.modules.conv._ConvNd:
    """The convolution layer called ``name``.

    Raises
    ------
    ValueError
        When the model has no convolution layer, ``name`` is not a layer, or it is not a
        convolution; the message lists the valid convolution layers.
    """
    found = conv_layers(model)
    valid = ", ".join(found) or "(none)"
    if not found:
        raise ValueError(
            f"the model ({type(model).__name__}) has no convolution layer (Conv1d, Conv2d, Conv3d "
            "or a transposed convolution), so it has no filters to show"
        )
    if name in found:
        module = found[name]
        if isinstance(module.weight, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"layer {name!r} ({type(module).__name__}) has no weights yet: run the model once "
                "so the lazy layer knows its shape"
            )
        return module
    layers = named_layers(model)
    if name in layers:
        raise ValueError(
            f"layer {name!r} is a {type(layers[name]).__name__}, not a convolution; valid "
            f"convolution layers are: {valid}"
        )
    raise ValueError(f"unknown layer {name!r}; valid convolution layers are: {valid}")


def filter_stack(module: nn.modules.conv._ConvNd) -> torch.Tensor:
    """The layer's filters as pictures ``[filters, input_channels, h, w]``, float32 on the CPU.

    Filter ``i`` is ``module.weight[i]`` as stored: an output channel of a convolution (its input
    channels are ``in_channels / groups``), an input channel of a transposed convolution. ``Conv1d``
    kernels become one row (``h = 1``); ``Conv3d`` kernels stack their depth slices as rows.
    """
    weight = module.weight.detach().to("cpu", torch.float32).clone()
    filters, channels = weight.shape[:2]
    kernel = weight.shape[2:]
    if len(kernel) == 1:
        return weight.reshape(filters, channels, 1, kernel[0])
    return weight.reshape(filters, channels, -1, kernel[-1])


def filter_norms(module: nn.modules.conv._ConvNd) -> torch.Tensor:
    """The L2 norm of each filter (over all its input channels and kernel positions), float32."""
    weight = module.weight.detach().to("cpu", torch.float32)
    return torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), dim=1)


def flat_filters(module: nn.modules.conv._ConvNd) -> torch.Tensor:
    """One row per filter, ``[filters, input_channels * kernel size]``, float32 on the CPU."""
    weight = module.weight.detach().to("cpu", torch.float32)
    return weight.reshape(weight.shape[0], -1).clone()


def sort_order(norms: torch.Tensor, sort: str) -> list[int]:
    """Display order of the filters: ``"index"`` as stored, ``"norm"`` largest first (stable)."""
    if sort == "index":
        return list(range(norms.numel()))
    if sort == "norm":
        return [int(i) for i in torch.argsort(norms, descending=True, stable=True)]
    raise ValueError(f"unknown sort {sort!r}; valid sorts are ['index', 'norm']")


def histogram_edges(values: Any, bins: int = DEFAULT_BINS) -> np.ndarray:
    """``bins + 1`` equal-width edges over the finite range of ``values`` (float64).

    A constant (or empty) array gets a unit-wide range around its value, so there is always a bar.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    array = _as_array(values)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        low, high = -0.5, 0.5
    else:
        low, high = float(finite.min()), float(finite.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def histogram(values: Any, edges: np.ndarray) -> np.ndarray:
    """Counts of the finite ``values`` in the bins ``edges`` (``np.histogram``'s convention)."""
    array = _as_array(values)
    counts, _ = np.histogram(array[np.isfinite(array)], bins=edges)
    return counts


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy().ravel()
    return np.asarray(values, dtype=np.float64).ravel()
