"""The binning kernels of the training statistics: histograms against power-of-two edges and
sums of squares of many tensors at once, on the device (torch) or in numpy (small CPU models) —
the same counts every way (and in ``training_chunks`` for large CPU models).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

BINS = 32
"""Bins of every histogram, equal, over ``[-scale, scale]``."""

SMALLEST_EXPONENT = -100
"""Below a scale of 2^-100 (a tensor all smaller than 1e-30: a vanished gradient) its values are
first lifted by :data:`LIFT`, and the scale with them: the factor ``BINS / 2 / scale`` overflows
float32 from 2^-124 down, and would count zeros as NaN. Multiplying by powers of two is exact.
Such a tensor takes the general paths (:func:`histograms`, :func:`histograms_host`)."""

LIFT = 2.0**-SMALLEST_EXPONENT
"""What the values of a tensor of a scale below 2^SMALLEST_EXPONENT are multiplied by first."""


def scale_exponents(largest: list[float]) -> list[int] | None:
    """Each scale as a power of two (its exponent), from the tensors' largest magnitudes; None
    when one is NaN or Inf, or a scale is below 2^SMALLEST_EXPONENT.

    A handful of Python numbers: inside a training loop Python's math costs less here than numpy
    or torch calls, each of which pays for its cold code.
    """
    exponents = []
    for value in largest:
        if not math.isfinite(value):
            return None
        # value = m * 2^e with m in [0.5, 1): the scale is 2^e, or 2^(e - 1) when m is 0.5 (a
        # power of two already); 1 for a tensor of zeros (m = e = 0).
        mantissa, exponent = math.frexp(value)
        exponent -= mantissa == 0.5
        if exponent < SMALLEST_EXPONENT:
            return None
        exponents.append(exponent)
    return exponents


def rewrite_factors(
    factors: Any, bounds: list[tuple[int, int]], before: list[int], after: list[int]
) -> None:
    """Each value's factor ``BINS / 2 / scale`` (numpy's or torch's float32), rewritten for the
    tensors (``bounds``: where each one's values are) whose scale exponent went from ``before``
    to ``after``: few, from one sample to the next."""
    for row, (old, new) in enumerate(zip(before, after, strict=True)):
        if old != new:
            start, end = bounds[row]
            factors[start:end] = math.ldexp(BINS / 2, -new)


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
    lift = torch.ones_like(scales).masked_fill_(scales < 2.0**SMALLEST_EXPONENT, LIFT)
    position = values * lift[rows]
    position *= (BINS / 2 / (scales * lift))[rows]  # exact: power-of-two factors
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
    lift = np.where(scales < 2.0**SMALLEST_EXPONENT, LIFT, 1.0).astype(np.float32)
    position = values * lift[rows]
    position *= (np.float32(BINS / 2) / (scales * lift))[rows]  # exact: powers of two
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


class HostBins:
    """:func:`histograms_host` for tensors of the same shapes at every call (a model's parameters
    and gradients, sample after sample): the layout and a buffer are kept, and finite float32
    CPU tensors take a shorter path, without the per-value row gathers. The same counts,
    scales and sums of squares; anything else (empty tensors, other dtypes, a NaN or Inf, a scale
    below 2^SMALLEST_EXPONENT) goes to :func:`histograms_host`.

    Tensor ``i``'s counts are row ``slots[i]`` of a ``[rows, BINS + 3]`` table (by default row
    ``i`` of as many rows as tensors), the other rows zeros: the caller's own layout, without
    moving the rows afterwards. The scales and sums of squares are lists, in tensor order.
    """

    _key: tuple[Any, ...]
    _values: np.ndarray
    _views: list[torch.Tensor]
    _position: np.ndarray
    _starts: np.ndarray
    _bounds: list[tuple[int, int]]
    _empty: bool
    _offsets: np.ndarray
    _factors: np.ndarray
    _exponents: list[int]

    def __init__(self) -> None:
        self._filled = False
        self._lay_out((), (), 0)

    def __call__(
        self,
        tensors: list[torch.Tensor],
        slots: list[int] | None = None,
        rows: int | None = None,
    ) -> tuple[np.ndarray, list[float], list[float]]:
        self._filled = False
        slots = list(range(len(tensors))) if slots is None else slots
        rows = len(tensors) if rows is None else rows
        if not tensors or any(t.dtype is not torch.float32 or not t.is_cpu for t in tensors):
            return self._general(tensors, slots, rows)
        key = (tuple(t.shape for t in tensors), tuple(slots), rows)
        if key != self._key:
            self._lay_out(*key)
        if self._empty:
            return self._general(tensors, slots, rows)
        values, position, starts = self._values, self._position, self._starts
        with torch.no_grad():  # one call for all, none recorded by autograd
            torch._foreach_copy_(self._views, tensors)
        self._filled = True
        np.abs(values, out=position)
        exponents = scale_exponents(np.maximum.reduceat(position, starts).tolist())
        if exponents is None:  # NaN propagates through the extremes
            return self._general(tensors, slots, rows)
        if exponents != self._exponents:
            rewrite_factors(self._factors, self._bounds, self._exponents, exponents)
            self._exponents = exponents
        np.multiply(values, self._factors, out=position)  # exact: powers of two
        # Every value is within its scale, so position is in [-BINS/2, BINS/2]; the offsets move
        # each row to its own slots. A value at +scale lands in the slot above the bins: it is
        # added to the last bin below (closed, as numpy's).
        np.floor(position, out=position)
        np.add(position, self._offsets, out=position)  # small whole numbers: exact in float32
        counts = np.bincount(position.astype(np.intp), minlength=rows * (BINS + 3))
        counts = counts.reshape(rows, BINS + 3)
        counts[:, BINS] += counts[:, BINS + 1]
        counts[:, BINS + 1] = 0
        squares = np.add.reduceat(np.square(values, dtype=np.float64), starts).tolist()
        return counts, [math.ldexp(1.0, e) for e in exponents], squares

    @staticmethod
    def _general(
        tensors: list[torch.Tensor], slots: list[int], rows: int
    ) -> tuple[np.ndarray, list[float], list[float]]:
        """:func:`histograms_host`, its rows put in the table."""
        table = np.zeros((rows, BINS + 3), dtype=np.int64)
        if not tensors:
            return table, [], []
        counts, scales, squares = histograms_host([t.detach().numpy() for t in tensors])
        assert counts is not None and scales is not None and squares is not None
        table[slots] = counts
        return table, scales.tolist(), squares.tolist()

    def leading(self, count: int) -> np.ndarray | None:
        """The first ``count`` values of the last call's tensors, flat (None when they were not
        copied into the kept buffer): the weights, for the update ratio, without another copy."""
        return self._values[:count] if self._filled and count <= self._values.size else None

    def _lay_out(self, shapes: tuple[torch.Size, ...], slots: tuple[int, ...], rows: int) -> None:
        sizes = [math.prod(shape) for shape in shapes]
        total = sum(sizes)
        self._key = (shapes, slots, rows)
        self._values = np.empty(total, dtype=np.float32)
        buffer = torch.from_numpy(self._values)
        ends = np.cumsum(sizes, dtype=np.intp).tolist()
        self._bounds = [(end - size, end) for size, end in zip(sizes, ends, strict=True)]
        self._starts = np.array([start for start, _ in self._bounds], dtype=np.intp)
        self._empty = 0 in sizes
        self._views = [
            buffer[start:end].view(shape)
            for (start, end), shape in zip(self._bounds, shapes, strict=True)
        ]
        self._exponents = [-(1 << 30)] * len(sizes)  # no scale yet
        self._factors = np.empty(total, dtype=np.float32)
        self._position = np.empty(total, dtype=np.float32)
        starts = np.array(slots, dtype=np.float32) * (BINS + 3) + (BINS / 2 + 1)
        self._offsets = np.repeat(starts, sizes)


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
