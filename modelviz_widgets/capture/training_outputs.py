"""What the forward hooks of a sampled step saw, layer by layer, and its reduction to activation
statistics: each call's sums (in its hook, in torch; or, for small CPU models, from the output
kept until collecting, in numpy) and each ReLU layer's per-unit sums over the batch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from .training_activations import activation_sums, count_dtype, host_sums, sums_row, unit_sums
from .training_bins import row_offsets

if TYPE_CHECKING:
    from .training_stats import Reducer


class LayerOutputs:
    """The activation sums of the monitored layers (by index) over one sampled forward.

    A layer's outputs are reduced in its hook, on their device, the first time. For a float32
    CPU output no in-place operation changed by the time of collecting (its version counter is
    the same), the layer is *deferred* from then on: its hook keeps the output, and
    :meth:`host_parts` reduces all the kept outputs one after the other, in numpy, whose code
    stays warm from one to the next (inside a training loop, that costs less than a few torch
    calls in each hook, each paying for its cold code). A deferred layer's output that did change
    (``ReLU(inplace=True)`` after it, from some step on) no longer holds what the layer gave: that
    call is not counted, and the layer goes back to its hook from the next sample on.
    """

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        self.deferred = [False] * len(kinds)
        self._relu_layout: list[tuple[int, int]] = []  # ReLU layer, units: the dead counts' order
        self.clear()

    def clear(self) -> None:
        self._calls: list[tuple[int, int, list[torch.Tensor]]] = []  # layer, count, sums
        # Per ReLU layer: each unit's sum over the sampled batch (0: the unit never fired).
        self._alive: list[torch.Tensor | None] = [None] * len(self.kinds)
        self._kept: list[tuple[int, torch.Tensor, int]] = []  # layer, output, its version
        self._watched: list[tuple[int, torch.Tensor, int]] = []  # reduced in the hook

    def add(self, index: int, values: torch.Tensor) -> None:
        """One forward call's output (detached), from the layer's hook."""
        local = values.dtype is torch.float32 and values.is_cpu
        if local and self.deferred[index]:
            self._kept.append((index, values, values._version))
            return
        if local:
            self._watched.append((index, values, values._version))
        self._measure(index, values)

    def _measure(self, index: int, values: torch.Tensor) -> None:
        """One call's activation sums, in torch, where the output is."""
        kind = self.kinds[index]
        if kind != "relu" or values.dim() < 2:
            self._calls.append((index, values.numel(), activation_sums(values, kind)))
            return
        # ReLU outputs are >= 0: a unit is dead (positive for no sample) when its sum over the
        # batch is 0, and the layer's sum is the sum of its units' (a pass less).
        units = unit_sums(values)
        norm = torch.linalg.vector_norm(values)
        self._calls.append((index, values.numel(), [units.sum(), norm]))
        previous = self._alive[index]
        if previous is not None and previous.shape == units.shape:
            units = previous + units
        self._alive[index] = units

    def measure_kept(self) -> None:
        """The kept outputs reduced in torch, as in their hooks, for :meth:`device_parts`; no
        output is kept from then on (distributed training, large or moved models)."""
        kept, self._kept = self._kept, []
        for index, values, version in kept:
            if values._version == version:
                self._measure(index, values)
        self.deferred = [False] * len(self.kinds)

    def host_parts(self) -> list[np.ndarray | None]:
        """:meth:`device_parts` on the host, for one process: ``[layers, 4]`` sums and the dead
        units' counts. Decides which layers are deferred at the next sample."""
        sums = [[0.0] * 4 for _ in self.kinds]
        changed = {index for index, output, version in self._watched if output._version != version}
        for index, _, _ in self._watched:
            self.deferred[index] = index not in changed
        kept_alive: dict[int, np.ndarray] = {}
        for index, output, version in self._kept:
            if output._version != version:
                self.deferred[index] = False
                continue
            total, squares, saturated, units = host_sums(output, self.kinds[index])
            row = sums[index]
            row[0] += total
            row[1] += squares
            row[2] += saturated
            row[3] += output.numel()
            if units is not None:
                previous = kept_alive.get(index)
                same = previous is not None and previous.shape == units.shape
                kept_alive[index] = previous + units if same else units
        relu = [(i, a) for i, a in enumerate(self._alive) if a is not None]
        # Every call's 0-d sums, then each ReLU layer's count of dead units, reach Python in one
        # conversion.
        flat = [v for _, _, values in self._calls for v in values]
        flat += [(a <= 0).sum().to(count_dtype(a.dtype)) for _, a in relu]
        if len({v.dtype for v in flat}) == 1:
            converted = torch.stack(flat).tolist()
        else:  # layers of several dtypes (or none)
            converted = [float(v) for v in flat]
        numbers = iter(converted)
        for layer, count, values in self._calls:
            row = sums[layer]
            row[0] += next(numbers)
            norm = next(numbers)
            row[1] += norm * norm
            if len(values) > 2:
                row[2] += next(numbers)
            row[3] += count
        dead = converted[len(converted) - len(relu) :] if relu else []
        self._relu_layout = [(i, int(a.numel())) for i, a in relu]
        for index, units in kept_alive.items():
            dead.append(float(np.count_nonzero(units <= 0)))
            self._relu_layout.append((index, units.size))
        table = np.array(sums, dtype=np.float64).reshape(len(self.kinds), 4)
        return [table, np.array(dead, dtype=np.float64) if dead else None]

    def device_parts(
        self, device: torch.device, reducer: Reducer | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """On the device: ``[layers, 4]`` sums (value, square, saturated, count) and the dead
        units' count per ReLU layer; combined over the ranks first when there is a reducer."""
        self.measure_kept()
        n = len(self.kinds)
        sums = torch.zeros(n, 4, dtype=torch.float64, device=device)
        if self._calls:
            rows = torch.tensor([layer for layer, _, _ in self._calls], device=device)
            values = torch.stack([sums_row(v) for _, _, v in self._calls]).double()
            values[:, 1] = values[:, 1] * values[:, 1]  # norms to sums of squares
            counts = torch.tensor([c for _, c, _ in self._calls], dtype=torch.float64)
            calls = torch.cat([values.to(device), counts.to(device)[:, None]], dim=1)
            sums = sums.index_add_(0, rows, calls)
        relu = [(i, a) for i, a in enumerate(self._alive) if a is not None]
        self._relu_layout = [(i, int(a.numel())) for i, a in relu]
        peaks = torch.cat([a.reshape(-1).to(device).float() for _, a in relu]) if relu else None
        if reducer is not None:
            sums = reducer.sum(sums)
            if peaks is not None:
                peaks = reducer.max(peaks)
        if peaks is None:
            return sums, None
        layout = tuple((row, size) for row, (_, size) in enumerate(self._relu_layout))
        dead = torch.bincount(
            row_offsets(layout, 1, device), weights=(peaks <= 0).double(), minlength=len(relu)
        )
        return sums, dead

    def table(self, sums: np.ndarray | None, dead: np.ndarray | None) -> np.ndarray:
        """``[layers, 5]``: count, mean, std, dead fraction, saturated fraction (NaN: not seen)."""
        n = len(self.kinds)
        rows_in = [[0.0] * 4] * n if sums is None else sums.reshape(n, 4).tolist()
        dead_fraction = [math.nan] * n
        if dead is not None:
            for (row, units), count_dead in zip(self._relu_layout, dead.tolist(), strict=True):
                dead_fraction[row] = count_dead / units
        rows = []
        for kind, (total, squares, saturated, count), dead_part in zip(
            self.kinds, rows_in, dead_fraction, strict=True
        ):
            if count == 0:
                rows.append([math.nan] * 5)
                continue
            mean = total / count
            std = math.sqrt(max(squares / count - mean * mean, 0.0))
            saturated = saturated / count if kind in ("sigmoid", "tanh") else math.nan
            rows.append([count, mean, std, dead_part, saturated])
        return np.array(rows, dtype=np.float64).reshape(n, 5)
