"""What a training monitor sends its view: the recorded history as appended binary chunks, and
the loss curves (bqplot lines), their points taken incrementally from each run's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bqplot
import numpy as np

from ..capture.training_log import RunHistory, pack

if TYPE_CHECKING:
    from .training_monitor import TrainingMonitorCore

MAX_CURVE_POINTS = 2000
"""Points per loss or metric curve; longer runs are thinned (the last point always kept)."""

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


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


class LossFigure:
    """The loss of each run shown, one bqplot line each (a legend when there are several),
    extended at each :meth:`update` by the steps recorded since the last."""

    def __init__(self, histories: list[RunHistory]) -> None:
        x_scale, y_scale = bqplot.LinearScale(), bqplot.LinearScale()
        self.lines = [
            bqplot.Lines(
                x=np.zeros(0),
                y=np.zeros(0),
                scales={"x": x_scale, "y": y_scale},
                colors=[COLOURS[index % len(COLOURS)]],
                labels=[history.name],
                display_legend=len(histories) > 1,
            )
            for index, history in enumerate(histories)
        ]
        axes = [
            bqplot.Axis(scale=x_scale, label="step", tick_format="~s"),
            bqplot.Axis(scale=y_scale, side="left", label="loss", tick_format=".3~g"),
        ]
        self.figure = bqplot.Figure(
            marks=self.lines, axes=axes, title="loss", layout={"width": "480px"}
        )
        self.figure.fig_margin = {"top": 40, "bottom": 40, "left": 60, "right": 10}
        self._curves = [Curve() for _ in histories]

    def update(self, histories: list[RunHistory]) -> None:
        for history, line, curve in zip(histories, self.lines, self._curves, strict=True):
            steps, losses = curve.update(history)
            keep = thinned(len(steps), MAX_CURVE_POINTS)
            with line.hold_sync():
                line.x = steps[keep]
                line.y = losses[keep]

    def arrays(self) -> dict[str, np.ndarray]:
        """The curves' losses as drawn, for a static export."""
        return {f"loss_{i}": np.asarray(line.y) for i, line in enumerate(self.lines)}
