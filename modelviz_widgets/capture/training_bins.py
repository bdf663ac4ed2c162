"""The binning kernels of the training statistics: histograms against power-of-two edges and
sums of squares of many tensors at once, on the device (torch), in cache-sized chunks (large CPU
models) or in numpy (small CPU models) — the same counts every way.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

BINS = 32
"""Bins of every histogram, equal, over ``[-scale, scale]``."""


def histograms(
    tensors: list[torch.Tensor],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Histograms of several tensors in one pass, on their device.

    Returns ``[tensors, BINS + 3]`` counts (below ``-scale``, the bins, above ``scale``, NaN),
    each tensor's scale (the power of two at or above its largest finite magnitude, 1 when it
    has none) and its sum of squares.
    """
    if not tensors:
        return None, None, None
    flat = [t.reshape(-1) for t in tensors]
    values = torch.cat(flat).float()
    layout = tuple((row, t.numel()) for row, t in enumerate(flat))
    rows = row_offsets(layout, 1, values.device)
    largest = values.new_zeros(len(flat)).scatter_reduce_(
        0, rows, values.abs().nan_to_num(0.0, 0.0, 0.0), "amax"
    )
    largest = torch.where(largest > 0, largest, 1.0)
    scales = torch.exp2(torch.ceil(torch.log2(largest)))
    # float32 log2 rounds a value just above a power of two down to its exponent (16.000002
    # gives 4): one doubling puts the largest value back inside the range.
    scales = torch.where(scales < largest, scales * 2, scales)
    position = values * (BINS / 2 / scales)[rows]  # exact: a power-of-two factor
    slot = torch.floor(position) + (BINS / 2 + 1)  # slot 1 is the first bin
    slot = torch.where(position == BINS / 2, float(BINS), slot)  # the last bin is closed
    slot = slot.clamp(0, BINS + 1).nan_to_num(BINS + 2).long()
    slot = slot + row_offsets(layout, BINS + 3, values.device)
    counts = torch.bincount(slot, minlength=len(flat) * (BINS + 3)).reshape(len(flat), -1)
    finite = torch.where(values.isnan(), 0.0, values)  # NaN counts nowhere; an Inf makes Inf
    squares = torch.bincount(rows, weights=finite * finite, minlength=len(flat))
    return counts, scales, squares


def histograms_host(arrays: list[np.ndarray]) -> list[np.ndarray | None]:
    """:func:`histograms` in numpy, for small CPU models (same bins, same counts)."""
    if not arrays:
        return [None, None, None]
    flat = [a.reshape(-1) for a in arrays]
    sizes = np.array([a.size for a in flat])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    values = np.concatenate(flat).astype(np.float32, copy=False)
    magnitudes = np.abs(values)
    magnitudes[~np.isfinite(magnitudes)] = 0.0
    largest = np.maximum.reduceat(magnitudes, starts) if values.size else np.zeros(len(flat))
    largest[~(largest > 0)] = 1.0
    scales = np.exp2(np.ceil(np.log2(largest))).astype(np.float32)
    scales[scales < largest] *= 2  # as in _histograms: log2 can round down at a power of two
    rows = np.repeat(np.arange(len(flat)), sizes)
    position = values * (np.float32(BINS / 2) / scales)[rows]  # exact: a power-of-two factor
    with np.errstate(invalid="ignore"):
        slot = np.floor(position) + np.float32(BINS / 2 + 1)
        slot[position == BINS / 2] = BINS
        np.clip(slot, 0, BINS + 1, out=slot)
    slot[np.isnan(slot)] = BINS + 2
    index = slot.astype(np.int64) + rows * (BINS + 3)
    counts = np.bincount(index, minlength=len(flat) * (BINS + 3)).reshape(len(flat), -1)
    finite = np.where(np.isnan(values), 0.0, values.astype(np.float64))  # as in _histograms
    squares = np.add.reduceat(finite * finite, starts) if values.size else np.zeros(len(flat))
    squares[sizes == 0] = 0.0
    return [counts.astype(np.float64), scales.astype(np.float64), squares]


def sum_squares(tensors: list[torch.Tensor]) -> torch.Tensor:
    values = torch.cat([t.reshape(-1) for t in tensors]).float()
    layout = tuple((row, t.numel()) for row, t in enumerate(tensors))
    return torch.bincount(
        row_offsets(layout, 1, values.device), weights=values * values, minlength=len(tensors)
    )


def to_host(parts: list[torch.Tensor | None], device: torch.device) -> list[np.ndarray | None]:
    """Every part in one device-to-host copy, as float64 arrays of their shapes."""
    present = [part for part in parts if part is not None]
    if not present:
        return [None] * len(parts)
    flat = torch.cat([p.to(device, torch.float64).reshape(-1) for p in present]).cpu().numpy()
    host: list[np.ndarray | None] = []
    offset = 0
    for part in parts:
        if part is None:
            host.append(None)
        else:
            host.append(flat[offset : offset + part.numel()].reshape(part.shape))
            offset += part.numel()
    return host


CHUNK = 1 << 18
"""Values per pass of the CPU loops below: cache-sized, in buffers reused from step to step."""

_scratch = threading.local()


def _buffers() -> tuple[torch.Tensor, torch.Tensor]:
    """This thread's reused float32 values and uint8 bins (``CHUNK`` each)."""
    if not hasattr(_scratch, "values"):
        _scratch.values = torch.empty(CHUNK, dtype=torch.float32)
        _scratch.bins = torch.empty(CHUNK, dtype=torch.uint8)
    return _scratch.values, _scratch.bins


def histograms_cpu(
    tensors: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """:func:`histograms` for large CPU models, bit for bit: tensor by tensor in cache-sized
    chunks, without the concatenation and the per-value row gathers (a tenth of the time or
    less). None when a tensor is empty, not float32, or holds a NaN or Inf (then
    :func:`histograms` does it)."""
    if not tensors or any(t.dtype != torch.float32 or t.numel() == 0 for t in tensors):
        return None
    extremes = torch.stack([torch.stack(torch.aminmax(t)) for t in tensors])  # NaN propagates
    largest = torch.maximum(-extremes[:, 0], extremes[:, 1])
    if not bool(torch.isfinite(largest).all()):
        return None
    largest = torch.where(largest > 0, largest, 1.0)
    scales = torch.exp2(torch.ceil(torch.log2(largest)))
    scales = torch.where(scales < largest, scales * 2, scales)  # as in _histograms
    factors = BINS / 2 / scales
    counts = torch.zeros(len(tensors), BINS + 3, dtype=torch.int64)
    values, bins = _buffers()
    for row, tensor in enumerate(tensors):
        flat = tensor.reshape(-1)
        for start in range(0, flat.numel(), CHUNK):
            part = flat[start : start + CHUNK]
            position, slot = values[: part.numel()], bins[: part.numel()]
            torch.mul(part, factors[row], out=position)  # the same exact product as _histograms
            # Every value is finite and within the scale, so position is in [-BINS/2, BINS/2];
            # clamping BINS/2 (a value at +scale) into the last bin closes it, as numpy does.
            position.floor_().clamp_(-BINS // 2, BINS // 2 - 1).add_(BINS // 2)
            slot.copy_(position)
            counts[row, 1 : BINS + 1] += torch.bincount(slot, minlength=BINS)
    return counts, scales, norm_squares(tensors)


def norm_squares(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's squared L2 norm, from ``torch._foreach_norm`` (one call for all), in
    float64 so that the square root on the host gives the norm back exactly."""
    return torch.stack(torch._foreach_norm(tensors)).double().square()


_OFFSETS: dict[tuple[Any, ...], torch.Tensor] = {}


def row_offsets(layout: tuple[tuple[int, int], ...], stride: int, device: Any) -> torch.Tensor:
    """``row * stride`` for every value of the concatenated rows (cached: the sizes repeat)."""
    key = (layout, stride, str(device))
    offsets = _OFFSETS.get(key)
    if offsets is None:
        if len(_OFFSETS) > 64:
            _OFFSETS.clear()
        rows = torch.tensor([row for row, _ in layout], device=device)
        lengths = torch.tensor([length for _, length in layout], device=device)
        offsets = _OFFSETS[key] = torch.repeat_interleave(rows * stride, lengths)
    return offsets
