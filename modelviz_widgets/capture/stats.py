"""Activation functions and what a layer feeds them: curves and derivatives, the pre-activation
values of an activation layer, their histogram, and their share in saturated or dead regions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import model_lock, removing, visual_mode
from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model, resolve_layers

FUNCTIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu", "silu")
"""Activation functions with a drawn curve, in display order."""

X_RANGE: tuple[float, float] = (-6.0, 6.0)
"""x range of the curves, and of the fixed histogram bins under them."""

SATURATION_THRESHOLD = 0.05
"""A pre-activation ``x`` of sigmoid or tanh is *saturated* where ``|f'(x)|`` is below this
fraction of the derivative's maximum (0.25 for sigmoid, 1 for tanh): ``|x| > 4.36`` for sigmoid,
``|x| > 2.18`` for tanh."""

DEFAULT_NEGATIVE_SLOPE = 0.01
"""Leaky ReLU slope for ``x < 0`` when no layer says otherwise (PyTorch's default)."""

_MODULE_FUNCTIONS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.ReLU, "relu"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.GELU, "gelu"),
    (nn.SiLU, "silu"),
)

MODULE_TYPES: tuple[type[nn.Module], ...] = tuple(module for module, _ in _MODULE_FUNCTIONS)
"""Module types recognised as activation layers (exact types, not subclasses)."""

# Largest |f'| of the functions with a saturated region.
_DERIVATIVE_MAX = {"sigmoid": 0.25, "tanh": 1.0}


@dataclass(frozen=True)
class Activation:
    """One activation function with its settings.

    Attributes
    ----------
    name
        One of :data:`FUNCTIONS`.
    negative_slope
        Leaky ReLU's slope for ``x < 0``.
    approximate
        GELU's ``approximate`` (``"none"`` or ``"tanh"``).
    """

    name: str
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE
    approximate: str = "none"

    def __post_init__(self) -> None:
        check_function(self.name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "sigmoid":
            return torch.sigmoid(x)
        if self.name == "tanh":
            return torch.tanh(x)
        if self.name == "relu":
            return F.relu(x)
        if self.name == "leaky_relu":
            return F.leaky_relu(x, self.negative_slope)
        if self.name == "gelu":
            return F.gelu(x, approximate=self.approximate)
        return F.silu(x)

    @property
    def region(self) -> str:
        """``"saturated"`` (sigmoid, tanh), ``"dead"`` (ReLU, Leaky ReLU) or ``""`` (none)."""
        if self.name in _DERIVATIVE_MAX:
            return "saturated"
        if self.name in ("relu", "leaky_relu"):
            return "dead"
        return ""

    @property
    def region_rule(self) -> str:
        """The region in words, e.g. ``"x ≤ 0"``."""
        if self.name == "relu":
            return "x ≤ 0"
        if self.name == "leaky_relu":
            return "x < 0"
        if self.name in _DERIVATIVE_MAX:
            return f"|f'(x)| < {SATURATION_THRESHOLD:g} of max |f'|"
        return ""


def check_function(name: str) -> str:
    """``name`` if it is one of :data:`FUNCTIONS`, else ``ValueError`` listing them."""
    if name not in FUNCTIONS:
        raise ValueError(
            f"unknown activation function {name!r}; valid functions are: {', '.join(FUNCTIONS)}"
        )
    return name


def activation_of(module: nn.Module) -> Activation | None:
    """The drawn activation function a module applies, or ``None`` for other modules."""
    for module_type, name in _MODULE_FUNCTIONS:
        if type(module) is module_type:
            if name == "leaky_relu":
                slope = getattr(module, "negative_slope", DEFAULT_NEGATIVE_SLOPE)
                return Activation(name, negative_slope=float(slope))
            if name == "gelu":
                return Activation(name, approximate=str(module.approximate))
            return Activation(name)
    return None


def activation_layers(model: nn.Module) -> dict[str, Activation]:
    """The model's activation modules with a drawn curve, by ``named_modules()`` name."""
    found: dict[str, Activation] = {}
    for name, module in check_model(model).named_modules():
        activation = activation_of(module) if name else None
        if activation is not None:
            found[name] = activation
    return found


def curve(activation: Activation | str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(x)`` and ``f'(x)`` of an activation function, the derivative by autograd.

    At a kink (ReLU at 0) the derivative is PyTorch's choice (0 for ReLU).
    """
    function = Activation(activation) if isinstance(activation, str) else activation
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        values = function(leaf)
        (derivative,) = torch.autograd.grad(values.sum(), leaf)
    return values.detach(), derivative.detach()


def curve_grid(n_points: int = 481, x_range: tuple[float, float] = X_RANGE) -> torch.Tensor:
    """Evenly spaced float32 x values over ``x_range``."""
    return torch.linspace(x_range[0], x_range[1], n_points, dtype=torch.float32)


def bin_edges(n_bins: int = 60, x_range: tuple[float, float] = X_RANGE) -> np.ndarray:
    """Fixed float64 histogram bin edges covering ``x_range``."""
    return np.linspace(x_range[0], x_range[1], n_bins + 1)


@dataclass(frozen=True)
class Histogram:
    """Counts of values in fixed bins, and of those outside them.

    ``counts[i]`` counts ``edges[i] <= x < edges[i + 1]`` (the last bin includes its right edge),
    as ``numpy.histogram``; ``below`` / ``above`` count finite values left / right of all bins and
    ``nonfinite`` the NaN and ±Inf values.
    """

    counts: np.ndarray
    edges: np.ndarray
    below: int
    above: int
    nonfinite: int

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.below + self.above + self.nonfinite


def histogram(values: torch.Tensor | np.ndarray, edges: np.ndarray) -> Histogram:
    """Histogram of every element of ``values`` over fixed ``edges``, out-of-range counted apart."""
    array = _flat(values)
    finite = array[np.isfinite(array)]
    counts, _ = np.histogram(finite, bins=edges)
    return Histogram(
        counts=counts.astype(np.int64),
        edges=np.asarray(edges, dtype=np.float64),
        below=int((finite < edges[0]).sum()),
        above=int((finite > edges[-1]).sum()),
        nonfinite=int(array.size - finite.size),
    )


def region_mask(activation: Activation | str, values: torch.Tensor) -> torch.Tensor | None:
    """Which values lie in the function's saturated or dead region (``None`` when it has none).

    NaN lies in no region.
    """
    function = Activation(activation) if isinstance(activation, str) else activation
    if function.name == "relu":
        return values <= 0
    if function.name == "leaky_relu":
        return values < 0
    if function.name in _DERIVATIVE_MAX:
        _, derivative = curve(function, values.to(torch.float64))
        limit = SATURATION_THRESHOLD * _DERIVATIVE_MAX[function.name]
        return derivative.abs() < limit
    return None


def region_fraction(activation: Activation | str, values: torch.Tensor) -> float | None:
    """Fraction of ``values`` in the saturated or dead region; ``None`` for GELU / SiLU."""
    mask = region_mask(activation, values)
    if mask is None or values.numel() == 0:
        return None
    return float(mask.sum().item()) / values.numel()


def pre_activations(
    model: nn.Module, inputs: Any, layers: str | Iterable[str]
) -> dict[str, torch.Tensor]:
    """What each named layer receives: its first positional input, detached and copied.

    Forward pre-hooks record the input before the layer runs, so an in-place activation
    (``ReLU(inplace=True)``) cannot overwrite it; they are removed afterwards and the forward runs
    in eval mode without gradients, leaving the model as it was. A module that runs more than once
    keeps its last call's input.
    """
    check_model(model)
    modules = resolve_layers(model, layers)
    seen: dict[str, torch.Tensor] = {}

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], torch.Tensor):
                seen[name] = args[0].detach().clone()

        return hook

    inputs = move_to_device(inputs, model_device(model))
    with model_lock(model):
        handles = [
            module.register_forward_pre_hook(hook_for(name)) for name, module in modules.items()
        ]
        with removing(handles), visual_mode(model), torch.no_grad():
            try:
                call_model(model, inputs)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
    silent = [name for name in modules if name not in seen]
    if silent:
        raise ValueError(
            f"layer(s) {', '.join(map(repr, silent))} did not run on a tensor for these inputs"
        )
    return seen


def _flat(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).reshape(-1).numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)
