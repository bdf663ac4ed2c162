"""Driving one FeatureMaps view in the page, and the interleaved latency measurement.

Shared by the browser tests and ``benchmarks/bench_browser.py``. Only the DOM contract is relied on
(``data-mv-widget``, ``data-mv-state``, ``data-mv-seq``, ``data-mv-control``) plus the canvases the
view draws into (the channel mosaic and the heatmap with a colorbar).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .jupyter import CANVAS_STATS_JS, Echo, HarnessError, Notebook, Sample, WidgetView, summarize

# Which canvas is which. The grid is the channel mosaic; the channel picture is the heatmap drawn
# with a colorbar (else the largest remaining picture); the rest (input picture, colorbars) are
# "other".
_ROLES_JS = """
(root) => {
  const canvases = Array.from(root.querySelectorAll('canvas'));
  const isColorbar = c => !!c.closest('.mvz-colorbar');
  const grid = canvases.find(c => c.closest('.mvz-mosaic') && !isColorbar(c));
  const pictures = canvases.filter(c => c !== grid && !isColorbar(c) && c.closest('.mvz-heatmap'));
  const area = c => c.getBoundingClientRect().width * c.getBoundingClientRect().height;
  const explicit = pictures.find(c => c.closest('[data-mv-part="channel"], .mvz-channel'));
  // The channel picture is the one drawn with a colour scale (the input picture has none).
  const scaled = pictures.find(c => c.closest('.mvz-heatmap').querySelector('.mvz-colorbar'));
  const channel = explicit || scaled || pictures.slice().sort((a, b) => area(b) - area(a))[0];
  return canvases.map(c => c === grid ? 'grid' : c === channel ? 'channel'
                      : isColorbar(c) ? 'colorbar' : 'other');
}
"""


@dataclass
class CanvasPicture:
    role: str
    width: int
    height: int
    hash: str
    colors: int
    opaque: int

    @property
    def blank(self) -> bool:
        """Nothing drawn: empty, fully transparent, or a single flat colour."""
        return self.width == 0 or self.height == 0 or self.opaque == 0 or self.colors < 2


class FeatureMapsView(WidgetView):
    """The ``nth`` FeatureMaps root of a notebook, its controls and its canvases."""

    def __init__(self, notebook: Notebook, nth: int = 0, python_name: str = "fm") -> None:
        super().__init__(notebook, notebook.widget_root("FeatureMaps", nth), python_name)

    def wait_ready(self, timeout: float = 60.0) -> str:
        return self.notebook.wait_ready(self.root, timeout)

    def pictures(self) -> dict[str, CanvasPicture]:
        """Pixel summaries of the grid and channel canvases (plus others as other-<i>)."""
        roles = self.root.evaluate(_ROLES_JS)
        stats = self.root.evaluate(CANVAS_STATS_JS)
        pictures: dict[str, CanvasPicture] = {}
        for index, (role, stat) in enumerate(zip(roles, stats, strict=True)):
            key = role if role in ("grid", "channel") else f"{role}-{index}"
            pictures[key] = CanvasPicture(
                role, stat["width"], stat["height"], stat["hash"], stat["colors"], stat["opaque"]
            )
        missing = {"grid", "channel"} - set(pictures)
        if missing:
            raise AssertionError(
                f"FeatureMaps root has no {' or '.join(sorted(missing))} canvas; canvases: {roles}"
            )
        return pictures

    def channel_value(self) -> int:
        return int(self.control("channel").input_value())

    def channel_bounds(self) -> tuple[int, int]:
        control = self.control("channel")
        low = control.get_attribute("min")
        high = control.get_attribute("max")
        return int(float(low or 0)), int(float(high or 0))

    def step_channel(self, timeout: float = 2.0) -> Sample:
        """One arrow-key step of the channel range (left at the end), timed to the redraw."""
        low, high = self.channel_bounds()
        key = "ArrowRight" if self.channel_value() < high else "ArrowLeft"
        if high <= low:
            raise HarnessError(
                f"channel control has a single value ({low}..{high}); nothing to move"
            )
        return self.notebook.key_to_seq(self.control("channel"), self.root, key, timeout)

    def set_layer(self, name: str, timeout: float = 30.0) -> int:
        """Pick a layer in the layer <select>; return the seq after the view redrew."""
        before = self.seq()
        self.control("layer").select_option(value=name)
        return self.notebook.wait_seq_after(self.root, before, timeout)

    def step_layer(self, options: tuple[str, str], timeout: float = 30.0) -> Sample:
        """Flip the layer <select> between two adjacent options by keyboard, timed to the redraw."""
        names = self.layer_options()
        first, second = options
        if names.index(second) != names.index(first) + 1:
            raise HarnessError(f"layers {options} are not adjacent in the <select>: {names}")
        current = self.control("layer").input_value()
        key = "ArrowDown" if current == first else "ArrowUp"
        if current not in options:
            self.set_layer(first, timeout)
            key = "ArrowDown"
        return self.notebook.key_to_seq(self.control("layer"), self.root, key, timeout)

    def layer_options(self) -> list[str]:
        values = self.control("layer").evaluate("(s) => Array.from(s.options).map(o => o.value)")
        return [str(value) for value in values]

    def click_grid_cell(self, channel: int, n_channels: int, timeout: float = 10.0) -> int:
        """Click the middle of channel ``channel``'s cell, assuming a near-square grid
        (ceil(sqrt(C)) columns); return the seq after the redraw."""
        cols = math.ceil(math.sqrt(n_channels))
        rows = math.ceil(n_channels / cols)
        grid = self.root.locator(".mvz-mosaic canvas").first
        box = grid.bounding_box()
        if box is None:
            raise AssertionError("the channel grid canvas is not visible")
        col, row = channel % cols, channel // cols
        before = self.seq()
        grid.click(
            position={
                "x": (col + 0.5) / cols * box["width"],
                "y": (row + 0.5) / rows * box["height"],
            }
        )
        return self.notebook.wait_seq_after(self.root, before, timeout)


# --- latency --------------------------------------------------------------------------------------


@dataclass
class LatencyRun:
    """Interleaved samples of several key-press-to-redraw paths, in milliseconds."""

    samples: dict[str, list[float]]
    timeouts: dict[str, int]
    seconds: float
    failures: dict[str, dict[str, Any]]

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: summarize(values) for name, values in self.samples.items()}


def measure_interleaved(
    paths: dict[str, Callable[[], Sample]],
    n: int,
    warmup: int = 3,
    pause: float = 0.05,
    max_timeouts: int = 2,
) -> LatencyRun:
    """Take ``n`` samples of each path, round-robin, after ``warmup`` untimed rounds.

    A short pause between samples lets the previous update's trailing messages (kernel status, echo)
    land, so one sample does not queue behind another. A path that timed out ``max_timeouts`` times
    is dropped, so a broken path fails in seconds, not minutes; its last failure is kept.
    """
    samples: dict[str, list[float]] = {name: [] for name in paths}
    timeouts: dict[str, int] = {name: 0 for name in paths}
    failures: dict[str, dict[str, Any]] = {}
    start = time.monotonic()
    for round_index in range(warmup + n):
        for name, take in paths.items():
            if timeouts[name] >= max_timeouts:
                continue
            sample = take()
            time.sleep(pause)
            if sample.ms is None:
                timeouts[name] += 1
                failures[name] = sample.detail
            elif round_index >= warmup:
                samples[name].append(sample.ms)
    return LatencyRun(samples, timeouts, time.monotonic() - start, failures)


def echo_and_feature_maps(
    notebook: Notebook, view: FeatureMapsView
) -> dict[str, Callable[[], Sample]]:
    """The two paths the budget compares: the IntSlider echo and the FeatureMaps channel step."""
    echo = Echo(notebook)
    return {"intslider_echo": echo.step, "feature_maps_channel": view.step_channel}
