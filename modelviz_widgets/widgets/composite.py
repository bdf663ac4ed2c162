"""Views made of a modelviz core (an anywidget with the controls, canvases and DOM contract) and
bqplot figures laid out beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets
import numpy as np

from .base import ModelWidget


def forwarded(name: str, doc: str) -> property:
    """A property of a composite (any widget with a ``core``) that reads and writes the trait
    ``name`` of its core."""

    def read(self: Any) -> Any:
        return getattr(self.core, name)

    def write(self: Any, value: Any) -> None:
        setattr(self.core, name, value)

    return property(read, write, doc=doc)


def close_tree(widget: Any) -> None:
    """Close a widget and every widget it holds (box children; a bqplot figure's marks, axes,
    scales and interactions), which ``Widget.close`` alone leaves open in the registry."""
    seen: set[int] = set()
    pending = [widget]
    while pending:
        current = pending.pop()
        if not isinstance(current, ipywidgets.Widget) or id(current) in seen:
            continue
        seen.add(id(current))
        for attribute in ("children", "marks", "axes"):
            pending.extend(getattr(current, attribute, None) or ())
        for attribute in ("interaction", "scale_x", "scale_y", "layout", "style", "tooltip"):
            pending.append(getattr(current, attribute, None))
        scales = getattr(current, "scales", None)
        if isinstance(scales, dict):
            pending.extend(scales.values())
        pending.append(getattr(current, "scale", None))
        # The base close: a subclass's close() may itself call close_tree.
        ipywidgets.Widget.close(current)


class CompositeView(ipywidgets.VBox):
    """A core view on top and figures below, closed and used as a context manager as one widget."""

    def __init__(
        self, core: ModelWidget, figures: Sequence[ipywidgets.DOMWidget] = (), **kwargs: Any
    ) -> None:
        self.core = core
        self.figures = list(figures)
        rows: list[ipywidgets.Widget] = [core]
        if self.figures:
            rows.append(ipywidgets.HBox(self.figures))
        super().__init__(children=rows, **kwargs)
        self.add_class("mvz-composite")

    @property
    def current(self) -> dict[str, np.ndarray]:
        """The float32 arrays on screen right now: the core's, and those of the figures."""
        return {**self.core.current, **self._figure_arrays()}

    def _figure_arrays(self) -> dict[str, np.ndarray]:
        """What the figures show (subclasses name their data here)."""
        return {}

    @property
    def error(self) -> str:
        """The message shown when the last update failed; empty when all is well."""
        return self.core.error

    def close(self) -> None:
        """Close the core (dropping its hold on the model), the figures and the layout."""
        if "core" not in self.__dict__:  # construction failed before the view was built
            ipywidgets.Widget.close(self)
            return
        self.core.close()
        # The layout rows, the figures with their marks, scales and axes, and every layout object.
        close_tree(self)

    def __enter__(self) -> CompositeView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
