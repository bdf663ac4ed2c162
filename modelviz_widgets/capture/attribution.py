"""``attribute``: which parts of an input drive a model's score, by seven methods.

The methods agree with captum's (checked in tests/unit/test_attribution.py) and leave the model as
they found it: the computation runs in eval mode with every module's flag restored after, hooks are
removed on success, error and cancellation, and gradients come from ``torch.autograd.grad`` so no
parameter's ``.grad``, ``requires_grad``, parameter or buffer is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .attribution_grad_cam import conv_like_layers, grad_cam
from .attribution_gradients import METHODS as GRADIENT_METHODS
from .attribution_gradients import QUADRATURES
from .attribution_job import Job, Progress, ProgressCallback, RowTarget
from .attribution_occlusion import occlusion
from .hooks import Target, visual_mode
from .inputs import as_batch, model_device
from .layers import check_model

__all__ = ["METHODS", "OPTIONS", "Cancelled", "attribute", "conv_like_layers"]


class Cancelled(Exception):
    """Raise this from a ``progress`` callable to abandon an attribution: ``attribute`` stops after
    the current chunk, removes its hooks, restores the model and lets the exception through."""


METHODS: tuple[str, ...] = (
    "saliency",
    "grad_x_input",
    "smoothgrad",
    "integrated_gradients",
    "grad_cam",
    "guided_backprop",
    "occlusion",
)

OPTIONS: dict[str, dict[str, Any]] = {
    "saliency": {"abs": True},
    "grad_x_input": {},
    "smoothgrad": {
        "n_samples": 10,
        "noise": 0.15,
        "stdev": None,
        "seed": 0,
        "abs": True,
        "internal_batch_size": None,
    },
    "integrated_gradients": {
        "steps": 50,
        "baseline": None,
        "internal_batch_size": None,
        "quadrature": "gausslegendre",
    },
    "grad_cam": {"relu": True, "upsample": False, "interpolate_mode": "nearest"},
    "guided_backprop": {},
    "occlusion": {"window": None, "stride": None, "baseline": 0.0, "perturbations_per_eval": None},
}
"""Each method's options and their defaults."""

_RUNNERS: dict[str, Callable[[Job], torch.Tensor]] = {
    **GRADIENT_METHODS,
    "grad_cam": grad_cam,
    "occlusion": occlusion,
}


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    method: str = "saliency",
    layer: str | None = None,
    *,
    progress: bool | ProgressCallback | None = None,
    **options: Any,
) -> torch.Tensor:
    """Attribute the target score of ``model`` on ``inputs`` to the input elements.

    Parameters
    ----------
    model
        Any differentiable ``nn.Module``; left exactly as it was.
    inputs
        A floating-point tensor ``[N, ...]`` (images ``[N, C, H, W]``, signals ``[N, C, L]``,
        tabular ``[N, F]``); one sample without the batch axis is accepted too.
    target
        A class index, one index per sample, a callable mapping the model output to one score per
        row (or their sum), or ``None`` for each sample's predicted class. A callable is applied
        to batches that hold several copies of each sample (steps, noisy copies, occluded
        copies), so it must work row by row (``lambda out: out[:, 3]``, not ``out[0, 3]``).
    method
        One of :data:`METHODS`; each method's options and defaults are in :data:`OPTIONS`.

        - ``"saliency"``: the gradient; its absolute value with ``abs=True`` (the default, as
          captum's ``Saliency``).
        - ``"grad_x_input"``: gradient times input.
        - ``"smoothgrad"``: the mean gradient (mean absolute gradient with ``abs=True``, as
          captum's ``NoiseTunnel(Saliency)``) over ``n_samples`` noisy copies. The noise standard
          deviation is ``noise`` times each sample's value range (max - min), or ``stdev`` in
          input units when given. Draws come from a generator seeded with ``seed`` (``None``: the
          global generator); on CPU, ``seed=s`` with ``stdev`` draws exactly what captum draws
          after ``torch.manual_seed(s)`` with ``stdevs=stdev`` and ``nt_samples_batch_size =
          internal_batch_size // N``.
        - ``"integrated_gradients"``: ``steps`` points from ``baseline`` (``None`` = zeros, a
          float, or a tensor shaped like a sample or like the inputs) to the input, by
          Gauss-Legendre quadrature (captum's default) or a ``riemann_*`` ``quadrature``.
        - ``"grad_cam"``: the ``layer``'s channels weighted by their mean gradient and summed,
          ``[N, *spatial]``; ReLU'd with ``relu=True`` (the paper's definition and our default;
          captum's ``LayerGradCam`` defaults to ``relu_attributions=False``). ``upsample=True``
          interpolates it to the input's spatial size with ``interpolate_mode`` ("nearest", as
          captum's ``LayerAttribution.interpolate``; "bilinear" looks smoother).
        - ``"guided_backprop"``: the gradient with every ``nn.ReLU`` module passing back only
          positive gradients (``F.relu`` calls are not modules and are left alone, as in captum).
        - ``"occlusion"``: the drop in the score when a ``window`` sliding by ``stride`` is set
          to ``baseline``, averaged over the windows covering each element. The window is a full
          sample shape such as ``(C, h, w)``, or only its trailing axes: ``(h, w)`` spans all
          channels. Defaults: about 1/8 of each space/time axis (one feature for flat samples),
          and a stride of half the window.
    layer
        The layer Grad-CAM uses, by ``named_modules()`` name; the other methods ignore it.
    progress
        ``None``: a progress line (or a ``tqdm.auto`` bar) once the work is expected to take over
        a second; ``False``: silent; ``True``: always; a callable ``(done, total)`` called after
        each forward/backward chunk. Whatever the callable raises (e.g. :class:`Cancelled`) stops
        the computation cleanly and propagates.
    **options
        The method's options (see :data:`OPTIONS`). ``internal_batch_size`` (Integrated Gradients,
        SmoothGrad) caps the rows per forward as in captum (``None``: all steps or samples in one
        forward unless that exceeds 2**24 input elements); ``perturbations_per_eval`` (occlusion)
        is the number of windows per forward (default: 32 rows). Each forward is one progress
        chunk, and the granularity at which a computation can be cancelled.

    Returns
    -------
    torch.Tensor
        Detached, on the inputs' device, shaped like ``inputs``; Grad-CAM: ``[N, *layer spatial
        axes]``, or ``[N, *input spatial axes]`` with ``upsample=True``.
    """
    check_model(model)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are: {', '.join(METHODS)}")
    chosen = _check_options(method, options)
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            f"progress must be None, True, False or a callable (done, total), got {progress!r}"
        )
    batch, unbatched = _batched(model, inputs)
    job_target, bounds = _normalize_target(target, batch.shape[0], batch.device)
    reporter = Progress(progress, f"attribute {method}")
    with visual_mode(model):
        job = Job(model, batch, job_target, bounds, layer, chosen, reporter)
        try:
            result = _RUNNERS[method](job)
        finally:
            reporter.close()
    result = result.detach().to(inputs.device)
    return result.squeeze(0) if unbatched else result


def _batched(model: nn.Module, inputs: Any) -> tuple[torch.Tensor, bool]:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(
            f"inputs have dtype {str(inputs.dtype).removeprefix('torch.')}, but attribution needs "
            "floating-point inputs to take gradients through. Integer token ids cannot be "
            "attributed directly: attribute on the embedding layer's output instead (not yet "
            "supported); for images or features stored as integers, convert first, e.g. "
            "inputs.float() / 255"
        )
    batch = as_batch(model, inputs)
    unbatched = batch.dim() == inputs.dim() + 1
    return batch.detach().to(model_device(model)), unbatched


def _normalize_target(
    target: Target, n: int, device: torch.device
) -> tuple[RowTarget, tuple[int, int] | None]:
    """``[N]`` class indices (or the callable, or ``None``) and the given indices' bounds."""
    if target is None or (callable(target) and not isinstance(target, torch.Tensor)):
        return target, None
    if isinstance(target, bool):
        raise TypeError(f"a target index must be an integer, got {target!r}")
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long, device=device), (target, target)
    try:
        index = torch.as_tensor(target)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            "target must be a class index, one index per sample, a callable on the model output "
            f"or None, got {type(target).__name__}"
        ) from None
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"a target index must be an integer, got {target!r}")
    index = index.reshape(-1).long().to(device)
    if index.numel() == 1 and n > 1:
        index = index.expand(n).contiguous()
    if index.numel() != n:
        raise ValueError(
            f"got {index.numel()} target indices for a batch of {n} samples; "
            "pass one index, or one per sample"
        )
    return index, (int(index.min()), int(index.max()))


def _check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    defaults = OPTIONS[method]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for method {method!r}; "
            f"its options are: {valid}"
        )
    chosen = {**defaults, **options}
    for name, value in chosen.items():
        _check_value(method, name, value)
    return chosen


_INT_OPTIONS = {"n_samples", "steps", "internal_batch_size", "perturbations_per_eval", "seed"}
_BOOL_OPTIONS = {"abs", "relu", "upsample"}


def _check_value(method: str, name: str, value: Any) -> None:
    optional = name in {"internal_batch_size", "perturbations_per_eval", "seed", "stdev"}
    if value is None and optional:
        return
    where = f"{method} option {name}"
    if name in _BOOL_OPTIONS and not isinstance(value, bool):
        raise TypeError(f"{where} must be True or False, got {value!r}")
    if name in _INT_OPTIONS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{where} must be an integer, got {value!r}")
        if value < (0 if name == "seed" else 1):
            raise ValueError(f"{where} must be >= {0 if name == 'seed' else 1}, got {value}")
    if name in {"noise", "stdev"}:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{where} must be a number, got {value!r}")
        if value < 0:
            raise ValueError(f"{where} must be >= 0, got {value}")
    if name == "quadrature" and value not in QUADRATURES:
        raise ValueError(f"{where} {value!r} is unknown; valid rules: {', '.join(QUADRATURES)}")
    if name == "interpolate_mode" and not isinstance(value, str):
        raise TypeError(f"{where} must be a string, got {value!r}")
