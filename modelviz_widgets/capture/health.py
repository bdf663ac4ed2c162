"""Layer health: which layers are dead, saturated, starved of gradient or not finite.

One forward in eval mode and one ``torch.autograd.grad`` of the target score give, for every leaf
module that ran, what its outputs and the score's gradient with respect to them look like. The
gradients come from tensor hooks registered inside forward hooks, so no parameter's ``.grad`` is
written. Every figure is reduced on the model's device; all of them reach the host in one copy.

Badges, and when a layer gets one (the thresholds are the module constants below):

- ``"dead"``: a ReLU-like layer (``ReLU``, ``ReLU6``) whose units (output positions: feature or
  channel x position) are never positive over the whole batch for at least :data:`DEAD` of them.
  Judged only on batches of at least :data:`DEAD_MIN_SAMPLES` samples: on one or two inputs about
  half of a healthy ReLU's units are off by chance.
- ``"saturated"``: a ``Sigmoid``, ``Tanh`` or ``Hardtanh`` layer with at least :data:`SATURATED` of
  its outputs within :data:`~.training_activations.SATURATION` of the function's limits, where its
  slope is nearly zero.
- ``"vanishing"``: the gradient reaching the layer's output, as an RMS, is below
  :data:`VANISHING` times the largest layer's (of those not exploding), or exactly zero, although
  the score depends on the layer (a layer the score does not use gets no gradient and no badge).
  A dead or saturated layer after it is the usual cause, so the badge is ranked below those.
- ``"exploding"``: the gradient RMS is above :data:`EXPLODING` times the median layer's.
- ``"nonfinite"`` (level ``"error"``): any NaN or infinity in the outputs or their gradients.

Each layer's ``severity`` orders what is most worth a look: 0 without a badge; a non-finite
output 3 to 4, earliest in the forward highest (where the NaN starts); non-finite gradients only
2.5 to 3, latest highest (a NaN gradient flows backwards); dead or saturated 1 + the fraction;
exploding 1.8; vanishing 1.2.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from .hooks import Target, _grad_leaves, removing, target_score, visual_mode
from .inputs import call_model, expected_input, input_error, model_device, move_to_device
from .layers import check_model, first_tensor
from .training_activations import SATURATION, activation_kind
from .training_bins import to_host

DEAD = 0.5
"""A ReLU layer with at least this fraction of units never positive over the batch is dead."""

DEAD_MIN_SAMPLES = 8
"""Fewest samples in the batch for a ``"dead"`` badge (the fraction is reported regardless)."""

SATURATED = 0.5
"""A sigmoid / tanh / hardtanh layer with at least this fraction of outputs saturated."""

VANISHING = 1e-6
"""A gradient RMS below this times the largest non-exploding layer's (or zero) is vanishing."""

EXPLODING = 1e4
"""A gradient RMS above this times the median layer's is exploding."""

BadgeKind = Literal["dead", "saturated", "vanishing", "exploding", "nonfinite"]


@dataclass(frozen=True)
class Badge:
    """One finding about a layer.

    Attributes
    ----------
    kind
        ``"dead"``, ``"saturated"``, ``"vanishing"``, ``"exploding"`` or ``"nonfinite"``.
    message
        One short sentence with the figure, e.g. ``"92% of units never fire on these inputs"``.
    level
        ``"warning"`` or ``"error"`` (non-finite values).
    """

    kind: BadgeKind
    message: str
    level: Literal["warning", "error"] = "warning"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "level": self.level}


@dataclass(frozen=True)
class LayerHealth:
    """What one leaf module's outputs and their gradients looked like, over all its calls.

    Attributes
    ----------
    name
        The ``named_modules()`` name.
    badges
        The findings, most severe first; empty for a healthy layer.
    dead_fraction
        ReLU-like layers: fraction of units (output positions) never positive over the batch.
    saturated_fraction
        Sigmoid / Tanh / Hardtanh layers: fraction of outputs within ``SATURATION`` of the limits.
    grad_rms
        RMS of the finite values of the score's gradient with respect to the output; ``None`` when
        no gradient reached the layer (the score does not use it, or nothing requires grad).
    nonfinite_outputs, nonfinite_grads
        How many output values, and gradient values, are NaN or infinite.
    severity
        How much the layer is worth a look (see the module docstring); 0 without badges.
    """

    name: str
    badges: tuple[Badge, ...]
    dead_fraction: float | None
    saturated_fraction: float | None
    grad_rms: float | None
    nonfinite_outputs: int
    nonfinite_grads: int
    severity: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "badges": [badge.as_dict() for badge in self.badges],
            "dead_fraction": self.dead_fraction,
            "saturated_fraction": self.saturated_fraction,
            "grad_rms": self.grad_rms,
            "nonfinite_outputs": self.nonfinite_outputs,
            "nonfinite_grads": self.nonfinite_grads,
            "severity": self.severity,
        }


@dataclass
class _Tally:
    """One layer's device scalars, to be summed per field after the one host copy."""

    first_call: int
    curve: str = ""
    outputs: int = 0
    samples: int = 0
    units: int = 0
    saturable: int = 0
    reached: bool = False
    parts: dict[str, list[torch.Tensor]] = field(default_factory=lambda: defaultdict(list))


def layer_health(model: nn.Module, inputs: Any, target: Target = None) -> dict[str, LayerHealth]:
    """Check every leaf layer that runs on ``inputs`` for dead units, saturation, vanishing or
    exploding gradients and non-finite values.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was (modes, parameters, buffers, hooks,
        ``.grad``).
    inputs
        A tensor, a tuple/list of positional arguments or a dict of keyword arguments, moved to
        the model's device. Use a batch of at least ``DEAD_MIN_SAMPLES`` samples for dead units.
    target
        Whose score the gradients are of: a class index, one index per sample, a callable on the
        output returning a scalar, or ``None`` for each sample's predicted class.

    Returns
    -------
    dict of str to LayerHealth
        Leaf modules that ran, by name, in model order; a module called several times is one
        entry over all its calls.
    """
    check_model(model)
    _check_inputs(model, inputs)
    leaves = {
        name: module
        for name, module in model.named_modules()
        if name and next(module.children(), None) is None
    }
    device = model_device(model)
    inputs = move_to_device(inputs, device)
    tallies: dict[str, _Tally] = {}
    outputs: list[torch.Tensor] = []
    handles: list[torch.utils.hooks.RemovableHandle] = []
    with visual_mode(model), removing(handles):
        for name, module in leaves.items():
            handles.append(module.register_forward_hook(_hook(name, module, tallies, outputs)))
        run_inputs, input_leaves = _grad_leaves(inputs)
        with torch.enable_grad():
            try:
                output = call_model(model, run_inputs)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
            score = target_score(output, target)
            wrt = input_leaves or [tensor for tensor in outputs if tensor.requires_grad]
            if score.requires_grad and wrt:
                torch.autograd.grad(score, wrt, allow_unused=True)
    health = _judge(_sums(tallies, device), tallies)
    return {name: health[name] for name in leaves if name in health}


def worst_layer(health: dict[str, LayerHealth]) -> str | None:
    """The layer most worth looking at: the highest severity (the earliest on a tie); ``None``
    when no layer has a badge."""
    worst: str | None = None
    for name, layer in health.items():
        if layer.badges and (worst is None or layer.severity > health[worst].severity):
            worst = name
    return worst


def _check_inputs(model: nn.Module, inputs: Any) -> None:
    values = list(inputs.values()) if isinstance(inputs, dict) else inputs
    if first_tensor(values) is None:
        expected = expected_input(model)
        hint = f"; {expected[1]}" if expected else ""
        raise TypeError(
            "inputs must be a tensor, or a tuple/list/dict holding the model's tensor arguments, "
            f"got {type(inputs).__name__}{hint}"
        )


def _hook(
    name: str, module: nn.Module, tallies: dict[str, _Tally], outputs: list[torch.Tensor]
) -> Callable[..., None]:
    kind = activation_kind(module)
    if isinstance(module, nn.Hardtanh) and kind == "tanh":
        limits = (float(module.min_val), float(module.max_val))
    else:
        limits = (0.0, 1.0) if kind == "sigmoid" else (-1.0, 1.0)

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        tally = tallies.get(name)
        if tally is None:
            tally = tallies[name] = _Tally(len(tallies), type(module).__name__.lower())
        tensor = first_tensor(output)
        if tensor is None or not tensor.is_floating_point():
            return
        values = tensor.detach()
        tally.outputs += values.numel()
        tally.parts["nonfinite_outputs"].append(_nonfinite_count(values))
        if kind == "relu":
            batched = values.reshape(values.shape[0], -1) if values.dim() >= 2 else values[None]
            alive = (batched > 0).any(dim=0)
            tally.parts["dead"].append((~alive).sum())
            tally.units += alive.numel()
            tally.samples = max(tally.samples, batched.shape[0])
        elif kind in ("sigmoid", "tanh"):
            low, high = limits
            saturated = (values < low + SATURATION) | (values > high - SATURATION)
            tally.parts["saturated"].append(saturated.sum())
            tally.saturable += values.numel()
        if tensor.requires_grad:
            outputs.append(tensor)
            tensor.register_hook(lambda gradient: _keep_gradient(tally, gradient))

    return hook


def _nonfinite_count(values: torch.Tensor) -> torch.Tensor:
    """NaN and Inf values of a layer output. On the CPU one sum decides the usual case first: a
    sum is finite only when every value is (or, rarely, when it overflows: then counted)."""
    if values.device.type == "cpu" and math.isfinite(float(values.sum())):
        return values.new_zeros((), dtype=torch.int64)
    return (~torch.isfinite(values)).sum()


def _keep_gradient(tally: _Tally, gradient: torch.Tensor) -> None:
    tally.reached = True
    if gradient.device.type == "cpu":
        # The usual case in one pass: the norm is finite exactly when every value is (or, rarely,
        # when float32 squares overflow: then the exact path below).
        norm = float(torch.linalg.vector_norm(gradient))
        if math.isfinite(norm):
            tally.parts["grad_squares"].append(torch.tensor(norm * norm, dtype=torch.float64))
            tally.parts["grad_finite"].append(torch.tensor(gradient.numel()))
            tally.parts["nonfinite_grads"].append(torch.tensor(0))
            return
    finite = torch.isfinite(gradient)
    tally.parts["grad_squares"].append(torch.where(finite, gradient, 0).double().square().sum())
    tally.parts["grad_finite"].append(finite.sum())
    tally.parts["nonfinite_grads"].append(gradient.numel() - finite.sum())


def _sums(tallies: dict[str, _Tally], device: torch.device) -> dict[tuple[str, str], float]:
    """Every (layer, field) sum, through one device-to-host copy."""
    keys: list[tuple[str, str]] = []
    values: list[torch.Tensor] = []
    for name, tally in tallies.items():
        for part, tensors in tally.parts.items():
            keys.append((name, part))
            values.append(torch.stack([t.to(device, torch.float64) for t in tensors]).sum())
    if not values:
        return {}
    host = to_host([torch.stack(values)], device)[0]
    assert host is not None
    return {key: float(value) for key, value in zip(keys, host, strict=True)}


def _judge(
    sums: dict[tuple[str, str], float], tallies: dict[str, _Tally]
) -> dict[str, LayerHealth]:
    rms: dict[str, float | None] = {}
    for name in tallies:
        finite = sums.get((name, "grad_finite"), 0.0)
        rms[name] = math.sqrt(sums[(name, "grad_squares")] / finite) if finite else None
    known = [value for value in rms.values() if value is not None]
    positive = [value for value in known if value > 0]
    median = statistics.median(positive) if positive else 0.0
    # Measured against the largest layer that is not itself exploding, so that one exploding
    # layer does not make every other layer look vanishing.
    largest = max((v for v in known if not median or v <= EXPLODING * median), default=0.0)
    n_layers = max(len(tallies), 1)
    result = {}
    for name, tally in tallies.items():
        position = tally.first_call / n_layers
        badges: list[tuple[float, Badge]] = []
        bad_out = int(sums.get((name, "nonfinite_outputs"), 0))
        bad_grad = int(sums.get((name, "nonfinite_grads"), 0))
        if bad_out or bad_grad:
            badges.append(_nonfinite(bad_out, tally, bad_grad, position))
        dead = sums[(name, "dead")] / tally.units if tally.units else None
        if dead is not None and dead >= DEAD and tally.samples >= DEAD_MIN_SAMPLES:
            message = f"{dead:.0%} of units never fire on these {tally.samples} inputs"
            badges.append((1.0 + dead, Badge("dead", message)))
        saturated = sums[(name, "saturated")] / tally.saturable if tally.saturable else None
        if saturated is not None and saturated >= SATURATED:
            message = (
                f"{saturated:.0%} of outputs are within {SATURATION} of the {tally.curve}'s limits"
            )
            badges.append((1.0 + saturated, Badge("saturated", message)))
        grad = rms[name]
        if grad is not None and largest > 0 and grad < VANISHING * largest:
            message = (
                "its gradient is exactly zero: a layer after it (dead? saturated?) blocks it"
                if grad == 0
                else f"gradient RMS {grad:.1e} is {grad / largest:.0e} of the largest layer's"
            )
            badges.append((1.2, Badge("vanishing", message)))
        if grad is not None and median > 0 and grad > EXPLODING * median:
            message = f"gradient RMS {grad:.1e} is {grad / median:.0e} times the median layer's"
            badges.append((1.8, Badge("exploding", message)))
        badges.sort(key=lambda item: -item[0])
        result[name] = LayerHealth(
            name=name,
            badges=tuple(badge for _, badge in badges),
            dead_fraction=dead,
            saturated_fraction=saturated,
            grad_rms=grad,
            nonfinite_outputs=bad_out,
            nonfinite_grads=bad_grad,
            severity=badges[0][0] if badges else 0.0,
        )
    return result


def _nonfinite(bad_out: int, tally: _Tally, bad_grad: int, position: float) -> tuple[float, Badge]:
    if bad_out:
        message = f"{bad_out:,} of {tally.outputs:,} outputs are NaN or infinite"
        if bad_grad:
            message += f", and {bad_grad:,} gradient values"
        return 3.0 + (1.0 - position), Badge("nonfinite", message, "error")
    message = f"{bad_grad:,} gradient values are NaN or infinite (the outputs are finite)"
    return 2.5 + 0.5 * position, Badge("nonfinite", message, "error")
