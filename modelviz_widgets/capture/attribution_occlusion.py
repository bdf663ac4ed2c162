"""Occlusion: slide a window over each sample, replace what it covers with a baseline, and credit
every covered element with the drop in the target score, averaged over the windows covering it.

Windows start every ``stride`` along each axis and the last one is cut at the edge, so every
element is covered (captum's placement). Perturbed copies are batched, ``perturbations_per_eval``
windows per forward, and the per-element sums are one matrix product per chunk.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

from .attribution_job import Job, baseline_like, rows_target
from .hooks import output_logits

# Rows per forward when perturbations_per_eval is not given.
DEFAULT_ROWS_PER_EVAL = 32


def _as_tuple(value: int | Sequence[int], name: str) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else tuple(value)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}")
    if any(v < 1 for v in values):
        raise ValueError(f"{name} entries must be >= 1, got {value!r}")
    return values


def window_shape(
    window: int | Sequence[int] | None, sample_shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The window over one sample's full shape. A shorter window covers the trailing axes and
    spans the leading ones whole: ``(h, w)`` on a ``[C, H, W]`` image occludes all channels."""
    if window is None:
        # Default: one feature at a time for flat samples; for maps, about an eighth of each
        # space/time axis across all channels.
        if len(sample_shape) == 1:
            window = (1,)
        else:
            window = tuple(max(1, math.ceil(size / 8)) for size in sample_shape[1:])
    values = _as_tuple(window, "window")
    if len(values) > len(sample_shape):
        raise ValueError(
            f"window {values} has more axes than one sample of shape {list(sample_shape)}"
        )
    full = sample_shape[: len(sample_shape) - len(values)] + values
    too_big = [axis for axis, (w, s) in enumerate(zip(full, sample_shape, strict=True)) if w > s]
    if too_big:
        raise ValueError(
            f"window {values} is larger than one sample of shape {list(sample_shape)}; "
            "each window axis must be at most the sample's size along it"
        )
    return full


def stride_shape(
    stride: int | Sequence[int] | None, window: tuple[int, ...], sample_shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The stride over one sample's full shape (default: half the window, at least 1)."""
    if stride is None:
        return tuple(max(1, w // 2) for w in window)
    values = _as_tuple(stride, "stride")
    if len(values) == 1:
        values = values * len(window)
    if len(values) > len(window):
        raise ValueError(f"stride {values} has more axes than the window {window}")
    full = window[: len(window) - len(values)] + values
    for w, s, size in zip(window, full, sample_shape, strict=True):
        if s > w and w < size:
            raise ValueError(
                f"stride {values} is larger than the window {window}: some elements would never "
                "be occluded; use a stride at most the window"
            )
    return full


def window_regions(
    window: tuple[int, ...], stride: tuple[int, ...], sample_shape: tuple[int, ...]
) -> list[tuple[slice, ...]]:
    starts = [
        [step * s for step in range(math.ceil((size - w) / s) + 1)]
        for w, s, size in zip(window, stride, sample_shape, strict=True)
    ]
    return [
        tuple(slice(start, start + w) for start, w in zip(corner, window, strict=True))
        for corner in itertools.product(*starts)
    ]


def occlusion(job: Job) -> torch.Tensor:
    x, options = job.inputs, job.options
    n = x.shape[0]
    sample_shape = tuple(x.shape[1:])
    window = window_shape(options["window"], sample_shape)
    stride = stride_shape(options["stride"], window, sample_shape)
    regions = window_regions(window, stride, sample_shape)
    per_eval = options["perturbations_per_eval"] or max(1, DEFAULT_ROWS_PER_EVAL // n)
    job.progress.plan(-(-len(regions) // per_eval))
    baseline = baseline_like(options["baseline"], x, allow_none=False)
    with torch.no_grad():
        output = job.forward(x.clone())
        target = job.target
        if target is None:
            target = output_logits(output).reshape(n, -1).argmax(dim=1)
        assert target is not None
        chunk_target: Any
        reference = job.row_scores(output, target, n)
        total = torch.zeros(n, x[0].numel(), dtype=x.dtype, device=x.device)
        coverage = torch.zeros(x[0].numel(), dtype=x.dtype, device=x.device)
        for start in range(0, len(regions), per_eval):
            chunk = regions[start : start + per_eval]
            masks = torch.zeros((len(chunk), *sample_shape), dtype=torch.bool, device=x.device)
            for index, region in enumerate(chunk):
                masks[(slice(index, index + 1), *region)] = True
            # [windows, N, ...]: window-major, every sample under each window.
            perturbed = torch.where(masks.unsqueeze(1), baseline, x.unsqueeze(0))
            chunk_target = rows_target(target, len(chunk), False)
            output = job.forward(perturbed.reshape(-1, *sample_shape))
            scores = job.row_scores(output, chunk_target, len(chunk) * n).view(len(chunk), n)
            weights = masks.view(len(chunk), -1).to(x.dtype)
            total += (reference - scores).T @ weights
            coverage += weights.sum(dim=0)
            job.progress.step()
    return (total / coverage).view_as(x)
