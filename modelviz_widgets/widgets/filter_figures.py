"""The bqplot figures of :class:`~modelviz_widgets.Filters`: projection scatter, histograms."""

from __future__ import annotations

import bqplot
import numpy as np


def histogram_figure(title: str) -> tuple[bqplot.Figure, bqplot.Bars]:
    """An empty histogram (bars of counts at bin centres) and its figure."""
    x_scale, y_scale = bqplot.LinearScale(), bqplot.LinearScale(min=0.0)
    bars = bqplot.Bars(
        x=np.zeros(0), y=np.zeros(0), scales={"x": x_scale, "y": y_scale}, padding=0.0
    )
    axes = [
        bqplot.Axis(scale=x_scale, label="value", tick_format=".2g", num_ticks=5),
        bqplot.Axis(scale=y_scale, side="left", label="count", tick_format=".3~g"),
    ]
    figure = bqplot.Figure(marks=[bars], axes=axes, title=title, layout={"width": "320px"})
    figure.fig_margin = {"top": 40, "bottom": 40, "left": 50, "right": 10}
    return figure, bars


def scatter_figure() -> tuple[bqplot.Figure, bqplot.Scatter]:
    """An empty scatter of projected filters: colour is the norm, a click selects one point."""
    x_scale, y_scale = bqplot.LinearScale(), bqplot.LinearScale()
    color_scale = bqplot.ColorScale(scheme="viridis")
    scatter = bqplot.Scatter(
        x=np.zeros(0),
        y=np.zeros(0),
        color=np.zeros(0),
        scales={"x": x_scale, "y": y_scale, "color": color_scale},
        interactions={"click": "select", "hover": "tooltip"},
        selected_style={"stroke": "#ff9800", "stroke-width": 3, "opacity": 1.0},
        unselected_style={"opacity": 0.6},
        tooltip=bqplot.Tooltip(
            fields=["index", "color"], labels=["filter", "norm"], formats=["", ".4g"]
        ),
    )
    axes = [
        bqplot.Axis(scale=x_scale, label="component 1", tick_format=".2g", num_ticks=5),
        bqplot.Axis(scale=y_scale, side="left", label="component 2", tick_format=".2g"),
    ]
    figure = bqplot.Figure(marks=[scatter], axes=axes, layout={"width": "360px"})
    figure.fig_margin = {"top": 40, "bottom": 40, "left": 50, "right": 10}
    return figure, scatter


def bin_centres(edges: np.ndarray) -> np.ndarray:
    """Middle of each bin of ``edges``."""
    return (edges[:-1] + edges[1:]) / 2
