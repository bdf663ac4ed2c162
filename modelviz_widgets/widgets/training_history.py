"""What a training monitor sends its view: the recorded history as appended binary chunks, and
the loss curve's points, taken incrementally from a run's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..capture.training_log import RunHistory, pack

if TYPE_CHECKING:
    from .training_monitor import TrainingMonitorCore


def send_history(
    core: TrainingMonitorCore,
    run: int,
    history: RunHistory,
    steps_from: int,
    samples_from: int,
    reset: bool = False,
) -> tuple[int, int]:
    """Send the steps and samples of ``history`` from the given positions; returns the new ends.

    Steps travel as float64 rows ``[step, seconds since the run began, loss, *metrics]``; samples
    as float32 rows ``[step, *packed statistics]`` (layout: ``capture.training_log.pack``).
    """
    steps = history.step_table(steps_from)
    if steps.size:
        start = history.times[0] if history.times else 0.0
        steps[:, 1] -= start
    samples = history.samples[samples_from:]
    if samples:
        rows = np.stack([np.concatenate([[s.step], pack(s)]) for s in samples]).astype(np.float32)
    else:
        rows = np.zeros((0, 0), dtype=np.float32)
    if not reset and not steps.size and not samples:
        return steps_from, samples_from
    content = {
        "type": "history",
        "run": run,
        "reset": reset,
        "steps_from": steps_from,
        "samples_from": samples_from,
        "steps_shape": list(steps.shape),
        "samples_shape": list(rows.shape),
        "metrics": list(history.metrics),
        "layers": len(history.layers),
    }
    core.send(content, buffers=[steps.astype("<f8").tobytes(), rows.astype("<f4").tobytes()])
    return len(history.steps), len(history.samples)


class Curve:
    """A run's finite losses and their steps as arrays, extended by the steps recorded since the
    last update: a long run's curve costs what its new steps cost, not its whole history.

    Non-finite losses are left out (they are alerts; bqplot cannot place a line's label at a NaN
    end point and logs an error in the browser).
    """

    def __init__(self) -> None:
        self._steps = np.zeros(1024)
        self._losses = np.zeros(1024)
        self._size = 0
        self._read = 0  # steps of the history taken so far

    def update(self, history: RunHistory) -> tuple[np.ndarray, np.ndarray]:
        if len(history.steps) < self._read:  # a history that was reset
            self._size = self._read = 0
        steps = np.asarray(history.steps[self._read :], dtype=np.float64)
        losses = np.asarray(history.losses[self._read :], dtype=np.float64)
        self._read += len(steps)
        finite = np.isfinite(losses)
        steps, losses = steps[finite], losses[finite]
        end = self._size + len(steps)
        if end > len(self._steps):
            capacity = max(end, 2 * len(self._steps))
            self._steps = np.resize(self._steps, capacity)
            self._losses = np.resize(self._losses, capacity)
        self._steps[self._size : end] = steps
        self._losses[self._size : end] = losses
        self._size = end
        return self._steps[:end], self._losses[:end]


def thinned(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` evenly spread points of ``count``, the last one included."""
    if count <= limit:
        return np.arange(count)
    keep = np.linspace(0, count - 1, limit).round().astype(np.int64)
    return np.unique(keep)
