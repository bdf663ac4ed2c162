"""Histograms of large CPU models: the same counts as :func:`training_bins.histograms`, bit for
bit, in far fewer passes over memory and far fewer torch calls.

Inside a training loop each distinct torch call costs tens of microseconds of cold code whatever
its size, and a large model's tensors do not fit in the cache. So a tensor of at least ``CHUNK``
values is read in cache-sized chunks, eight calls a chunk, its extremes just before (it is still
in the cache then); the smaller tensors are copied into one buffer kept from sample to sample
(:class:`PackedTensors`) and binned there in a dozen calls for all of them.

Both count pairs of values: once floored, a value's position against its scale is a whole number
from ``-BINS/2`` to ``BINS/2``, and two of them make one index of a ``PAIRS x PAIRS`` table,
counted by one ``bincount`` over half as many values (its increments, which wait on each other
when the bins are few, are most of a histogram's time). Summing the table along each side gives
both values' counts back.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

from .training_bins import BINS, norm_squares, rewrite_factors, scale_exponents

CHUNK = 1 << 18
"""Values per pass over a large tensor: cache-sized, in buffers reused from step to step.
Tensors with fewer values are packed together (:class:`PackedTensors`)."""

PAIRS = BINS + 1
"""Floored positions a value takes: ``-BINS/2 .. BINS/2`` (``BINS/2``: +scale itself, which
numpy counts in the last bin)."""

CENTRE = PAIRS * (BINS // 2) + BINS // 2
"""Pair index of two values at position 0: the pair indices start at 0."""

_scratch = threading.local()


def _buffers() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This thread's reused float32 positions (``CHUNK``), float32 and int64 pair indices
    (``CHUNK // 2`` each)."""
    if not hasattr(_scratch, "values") or _scratch.values.numel() != CHUNK:
        _scratch.values = torch.empty(CHUNK, dtype=torch.float32)
        _scratch.pairs = torch.empty(CHUNK // 2, dtype=torch.float32)
        _scratch.index = torch.empty(CHUNK // 2, dtype=torch.int64)
    return _scratch.values, _scratch.pairs, _scratch.index


def count_pairs(
    first: torch.Tensor,
    second: torch.Tensor,
    pair: torch.Tensor,
    index: torch.Tensor,
    starts: torch.Tensor | None = None,
    tables: int = 1,
) -> torch.Tensor:
    """``[tables * PAIRS * PAIRS]`` counts of the pairs of floored positions ``(first[j],
    second[j])``, each in the table that ``starts[j]`` (int64) begins, when there are several.
    ``pair`` and ``index`` (float32, int64) are as long as ``first``."""
    torch.add(second, first, alpha=PAIRS, out=pair)  # small whole numbers: exact in float32
    pair.add_(CENTRE)
    index.copy_(pair)
    if starts is not None:  # in int64: the tables' starts pass float32's whole numbers
        index.add_(starts)
    return torch.bincount(index, minlength=tables * PAIRS * PAIRS)


def _exponent(tensor: torch.Tensor) -> int | None:
    """The tensor's scale as a power of two (its exponent); None when it holds a NaN or Inf, or
    its scale is below 2^SMALLEST_EXPONENT."""
    low, high = torch.stack(torch.aminmax(tensor)).tolist()  # NaN propagates
    exponents = scale_exponents([max(-low, high) if math.isfinite(low + high) else math.nan])
    return None if exponents is None else exponents[0]


def _both_sides(tables: torch.Tensor) -> torch.Tensor:
    """``[tables, PAIRS]`` counts by floored position, from ``[tables * PAIRS * PAIRS]`` pair
    counts: each pair table summed along both sides."""
    tables = tables.view(-1, PAIRS, PAIRS)
    return tables.sum(dim=2) + tables.sum(dim=1)


def histograms_cpu(
    tensors: list[torch.Tensor],
    previous: list[torch.Tensor] | None = None,
    packed: PackedTensors | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
    """:func:`training_bins.histograms` for large CPU models, bit for bit: ``[tensors, BINS +
    3]`` counts, the scales and the sums of squares. None when a tensor is empty, not float32,
    holds a NaN or Inf or has a scale below 2^SMALLEST_EXPONENT (then ``histograms`` does it).

    ``packed`` holds the small tensors' layout from one sample to the next (kept by the caller;
    by default a fresh one). A vanished gradient (a scale below 2^SMALLEST_EXPONENT) sends the
    whole sample to ``histograms``, several times slower, for as long as it stays vanished.

    The sums of squares come from each chunk while it is in the cache, and so do, when
    ``previous`` holds the values of the first ``len(previous)`` tensors one step earlier, the
    sums of squares of their changes, then of those earlier values (the update ratio's), the
    fourth result: each value is read from memory once for all of it. ``previous[i]`` has the
    shape and dtype of ``tensors[i]``.
    """
    if not tensors or any(t.dtype != torch.float32 or t.numel() == 0 for t in tensors):
        return None
    earlier = previous or []
    large = [row for row, t in enumerate(tensors) if t.numel() >= CHUNK]
    small = [row for row, t in enumerate(tensors) if t.numel() < CHUNK]
    found = torch.zeros(len(tensors), PAIRS, dtype=torch.int64)  # by floored position
    scales = [1.0] * len(tensors)
    squares = [0.0] * len(tensors)
    if small:
        packed = PackedTensors() if packed is None else packed
        binned = packed([tensors[row] for row in small])
        if binned is None:
            return None
        counts_small, small_scales, small_squares = binned
        found[small] = counts_small
        for row, scale, square in zip(small, small_scales, small_squares, strict=True):
            scales[row], squares[row] = scale, square
    values, pairs, index = _buffers()
    chunk_norms: list[list[torch.Tensor]] = [[] for _ in large]
    changes: list[list[torch.Tensor]] = [[] for _ in large]
    olds: list[list[torch.Tensor]] = [[] for _ in large]
    single: list[tuple[int, float]] = []  # the last value of an odd chunk, unpaired
    tables = torch.zeros(len(large), PAIRS * PAIRS, dtype=torch.int64)
    for k, row in enumerate(large):
        exponent = _exponent(tensors[row])  # read just before its chunks: then in the cache
        if exponent is None:
            return None
        scales[row] = math.ldexp(1.0, exponent)
        factor = math.ldexp(BINS / 2, -exponent)  # a power of two: the products are exact
        table = tables[k]
        flat = tensors[row].reshape(-1)
        old = earlier[row].reshape(-1) if row < len(earlier) else None
        for start in range(0, flat.numel(), CHUNK):
            part = flat[start : start + CHUNK]
            size = part.numel()
            position = values if size == CHUNK else values[:size]
            chunk_norms[k].append(torch.linalg.vector_norm(part))
            if old is not None:
                before = old[start : start + CHUNK]
                olds[k].append(torch.linalg.vector_norm(before))
                torch.sub(part, before, out=position)
                changes[k].append(torch.linalg.vector_norm(position))
            # Every value is finite and within the scale: whole numbers -BINS/2 .. BINS/2.
            torch.mul(part, factor, out=position)
            position.floor_()
            half = size // 2
            first, second = position[:half], position[half : 2 * half]
            table += count_pairs(first, second, pairs[:half], index[:half])
            if size % 2:
                single.append((k, position[size - 1].item()))
    if large:
        found_large = _both_sides(tables)
        for k, position_value in single:
            found_large[k, int(position_value) + BINS // 2] += 1
        found[large] = found_large
        for k, square in enumerate(_chunk_squares(chunk_norms).tolist()):
            squares[large[k]] = square
    counts = torch.zeros(len(tensors), BINS + 3, dtype=torch.int64)
    counts[:, 1 : BINS + 1] = found[:, :BINS]
    counts[:, BINS] += found[:, BINS]  # +scale: in the last bin, closed as numpy's
    updates = _update_squares(tensors, earlier, large, changes, olds) if earlier else None
    return (
        counts,
        torch.tensor(scales, dtype=torch.float32),
        torch.tensor(squares, dtype=torch.float64),
        updates,
    )


class PackedTensors:
    """The small tensors of a large model, binned together in one buffer kept from sample to
    sample while their shapes stay the same: ``[tensors, PAIRS]`` counts by floored position,
    the scales and the sums of squares (lists); None for a NaN or Inf, or a scale below
    2^SMALLEST_EXPONENT.

    Each tensor takes an even number of slots (an odd one is followed by a zero, taken out of
    its counts again), so the pairs ``(2j, 2j + 1)`` never straddle two tensors; each value has
    its tensor's factor, each pair its tensor's table.
    """

    _bounds: list[tuple[int, int]]
    _starts: np.ndarray
    _odd: list[int]
    _values: torch.Tensor
    _views: list[torch.Tensor]
    _position: torch.Tensor
    _factors: torch.Tensor
    _exponents: list[int]
    _starts_of: torch.Tensor
    _pair: torch.Tensor
    _index: torch.Tensor

    def __init__(self) -> None:
        self._shapes: tuple[torch.Size, ...] | None = None

    def __call__(
        self, tensors: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[float], list[float]] | None:
        shapes = tuple(t.shape for t in tensors)
        if shapes != self._shapes:
            self._lay_out(shapes)
        with torch.no_grad():  # one call for all, none recorded by autograd
            torch._foreach_copy_(self._views, tensors)
        values, position = self._values.numpy(), self._position.numpy()
        np.abs(values, out=position)
        exponents = scale_exponents(np.maximum.reduceat(position, self._starts).tolist())
        if exponents is None:
            return None
        if exponents != self._exponents:
            rewrite_factors(self._factors, self._bounds, self._exponents, exponents)
            self._exponents = exponents
        torch.mul(self._values, self._factors, out=self._position)
        self._position.floor_()
        pairs = self._position.view(-1, 2)
        found = _both_sides(
            count_pairs(
                pairs[:, 0], pairs[:, 1], self._pair, self._index, self._starts_of, len(tensors)
            )
        )
        found[self._odd, BINS // 2] -= 1  # the padding zeros
        squares = norm_squares([t.detach() for t in tensors]).tolist()
        return found, [math.ldexp(1.0, e) for e in exponents], squares

    def _lay_out(self, shapes: tuple[torch.Size, ...]) -> None:
        sizes = [math.prod(shape) for shape in shapes]
        slots = [size + size % 2 for size in sizes]
        ends = np.cumsum(slots).tolist()
        total = ends[-1] if ends else 0
        self._shapes = shapes
        self._bounds = [(end - slot, end) for slot, end in zip(slots, ends, strict=True)]
        self._starts = np.array([start for start, _ in self._bounds], dtype=np.intp)
        self._odd = [row for row, size in enumerate(sizes) if size % 2]
        self._values = torch.zeros(total, dtype=torch.float32)  # the padding stays zero
        self._views = [
            self._values[start : start + size].view(shape)
            for (start, _), size, shape in zip(self._bounds, sizes, shapes, strict=True)
        ]
        self._position = torch.empty(total, dtype=torch.float32)
        self._factors = torch.empty(total, dtype=torch.float32)
        self._exponents = [-(1 << 30)] * len(shapes)  # no scale yet
        tables = torch.arange(len(shapes), dtype=torch.int64) * (PAIRS * PAIRS)
        self._starts_of = torch.repeat_interleave(tables, torch.tensor(slots) // 2)
        self._pair = torch.empty(total // 2, dtype=torch.float32)
        self._index = torch.empty(total // 2, dtype=torch.int64)


def _update_squares(
    tensors: list[torch.Tensor],
    earlier: list[torch.Tensor],
    large: list[int],
    changes: list[list[torch.Tensor]],
    olds: list[list[torch.Tensor]],
) -> torch.Tensor:
    """The update ratio's sums of squares, changes then earlier values, for the first
    ``len(earlier)`` tensors: the large ones' from their chunks, the others' here."""
    count = len(earlier)
    found = torch.zeros(2, count, dtype=torch.float64)
    where = [k for k, row in enumerate(large) if row < count]
    if where:
        rows = [large[k] for k in where]
        found[0, rows] = _chunk_squares([changes[k] for k in where])
        found[1, rows] = _chunk_squares([olds[k] for k in where])
    rest = [row for row in range(count) if tensors[row].numel() < CHUNK]
    if rest:
        moved = list(torch._foreach_sub([tensors[r] for r in rest], [earlier[r] for r in rest]))
        found[:, rest] = norm_squares(moved + [earlier[r] for r in rest]).view(2, -1)
    return found.reshape(-1)


def _chunk_squares(norms: list[list[torch.Tensor]]) -> torch.Tensor:
    """Each tensor's sum of squares, in float64, from the L2 norms of its chunks."""
    if not norms:
        return torch.zeros(0, dtype=torch.float64)
    flat = torch.stack([n for chunks in norms for n in chunks]).double().square()
    rows = torch.tensor([row for row, chunks in enumerate(norms) for _ in chunks])
    return torch.zeros(len(norms), dtype=torch.float64).index_add_(0, rows, flat)
