"""Read-only copies of the widgets of a static export that are not modelviz views: bqplot figures
as snapshots of their marks, scales and axes, and ipywidgets controls as their description and
value. Everything returned is plain JSON (NaN and Inf as null)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import ipywidgets
import numpy as np

__all__ = ["clean", "control_copy", "figure_snapshot"]

_SLIDERS = (
    ipywidgets.widgets.widget_int._BoundedInt,
    ipywidgets.widgets.widget_float._BoundedFloat,
)


def clean(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars and arrays as numbers, NaN and Inf as null."""
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        return clean(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def control_copy(widget: Any) -> dict[str, Any]:
    """A read-only copy of an ipywidgets control: its description and value."""
    node: dict[str, Any] = {"kind": "control", "widget": type(widget).__name__,
                            "description": str(widget.description or "")}  # fmt: skip
    value = getattr(widget, "value", None)
    node["value"] = "true" if value is True else "false" if value is False else str(value or "")
    if isinstance(widget, _SLIDERS):
        node.update(control="slider", min=clean(widget.min), max=clean(widget.max))
    elif isinstance(widget, ipywidgets.ToggleButtons):
        node.update(control="toggle", options=list(map(str, widget._options_labels)),
                    selected=widget.index)  # fmt: skip
    elif isinstance(widget, ipywidgets.widgets.widget_selection._Selection):
        node.update(control="select", options=list(map(str, widget._options_labels)),
                    selected=widget.index)  # fmt: skip
    elif isinstance(widget, ipywidgets.Button):
        node.update(control="button", value=str(widget.description or ""), description="")
    elif isinstance(widget, (ipywidgets.Checkbox, ipywidgets.ToggleButton)):
        node.update(control="checkbox")
    else:
        node.update(control="text")
    return node


def _array(values: Any) -> list[Any]:
    array = np.atleast_1d(np.asarray(values))
    if array.dtype.kind in "fiub":
        return list(clean(array.astype(np.float64)))
    return [str(v) for v in array.reshape(-1)] if array.ndim else [str(array)]


def _px(value: Any) -> int | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)px\s*$", str(value or ""))
    return int(float(match.group(1))) if match else None


def _histogram(mark: Any) -> dict[str, Any]:
    """Bin centres and counts of a bqplot Hist mark's sample (its finite values)."""
    sample = np.asarray(mark.sample, dtype=np.float64).reshape(-1)
    sample = sample[np.isfinite(sample)]
    counts, edges = np.histogram(sample, bins=int(mark.bins or 10))
    if mark.normalized and counts.sum() > 0:
        counts = counts / (counts.sum() * np.diff(edges))
    return {"x": _array((edges[:-1] + edges[1:]) / 2), "y": _array(counts)}


def figure_snapshot(figure: Any) -> dict[str, Any]:
    """A snapshot of a bqplot Figure: its marks' data, scales, axes and title, as plain JSON."""
    scales: dict[str, dict[str, Any]] = {}

    def scale(obj: Any) -> str:
        if obj is None:
            return ""
        kind = type(obj).__name__.replace("Scale", "").lower() or "linear"
        spec: dict[str, Any] = {"type": kind}
        for name in ("min", "max", "scheme"):
            if getattr(obj, name, None) is not None:
                spec[name] = clean(getattr(obj, name))
        if getattr(obj, "domain", None):
            spec["domain"] = clean(list(obj.domain))
        if getattr(obj, "colors", None):
            spec["colors"] = [str(c) for c in obj.colors]
        scales[obj.model_id] = spec
        return str(obj.model_id)

    marks = []
    for mark in figure.marks:
        spec: dict[str, Any] = {
            "type": type(mark).__name__,
            "visible": bool(getattr(mark, "visible", True)),
            "scales": {dim: scale(s) for dim, s in (mark.scales or {}).items()},
        }
        for name in ("x", "y", "color"):
            if getattr(mark, name, None) is not None:
                spec[name] = _array(getattr(mark, name))
        if spec["type"] == "Hist":  # binned here, as the browser would: drawn as bars
            spec.update(_histogram(mark), type="Bars", padding=0.0)
            spec["scales"] = {
                "x": spec["scales"].get("sample", ""),
                "y": spec["scales"].get("count", ""),
            }
        for name in ("colors", "opacities", "labels", "display_legend", "line_style",
                     "stroke_width", "default_size", "padding"):  # fmt: skip
            if getattr(mark, name, None) is not None:
                spec[name] = clean(getattr(mark, name))
        selected = getattr(mark, "selected", None)
        spec["selected"] = None if selected is None else clean(np.asarray(selected).reshape(-1))
        marks.append(spec)
    axes = [
        {
            "scale": scale(axis.scale),
            "side": axis.side or ("bottom" if axis.orientation == "horizontal" else "left"),
            "label": str(axis.label or ""),
            "num_ticks": axis.num_ticks,
            "tick_rotate": clean(getattr(axis, "tick_rotate", 0)),
            "color_axis": type(axis).__name__ == "ColorAxis",
        }
        for axis in figure.axes
    ]
    return {
        "title": str(figure.title or ""),
        "width": _px(figure.layout.width),
        "height": _px(figure.layout.height),
        "margin": clean(figure.fig_margin),
        "legend_location": str(figure.legend_location),
        "scales": scales,
        "axes": axes,
        "marks": marks,
    }
