"""What every modelviz widget shares: the JS bundle, payload publishing, errors, lifetime."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import ipywidgets
import numpy as np
import traitlets

from .. import wire

STATIC = Path(__file__).resolve().parent.parent / "static"

_MISSING_BUNDLE = """// modelviz_widgets: bundle missing
export default {
  render({ el }) {
    const box = document.createElement("div");
    box.setAttribute("data-mv-state", "error");
    box.textContent = "modelviz_widgets: the JavaScript bundle %s is missing. "
      + "Build it with `make js` (or `cd js && npm ci && npm run build`), or install the wheel.";
    el.appendChild(box);
  },
};
"""


def load_bundle(name: str) -> str:
    """The built ES module for a view, as text.

    Passing the text rather than a path keeps anywidget from watching the file, whose callback
    would hold every widget alive. When the bundle was never built, a module that says so is
    returned instead, so the widget shows how to fix it rather than a blank output.
    """
    path = STATIC / f"{name}.js"
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _MISSING_BUNDLE % f"{name}.js"
    # A one-line minified module could be taken by anywidget for a file path; a header avoids it.
    return f"// modelviz_widgets {name}\n{source}"


class SelectionError(traitlets.TraitError, ValueError):
    """An invalid selection. A TraitError, so traitlets rolls the trait back when the browser
    sent it; a ValueError for Python callers."""


class ModelWidget(anywidget.AnyWidget):
    """Base of the views: binary payloads, an error line, ``current``, ``close()`` and ``with``."""

    error = traitlets.Unicode("").tag(sync=True)
    """Message shown in the view when the last update failed; empty when all is well."""

    encoding = traitlets.Enum(list(wire.ENCODINGS), default_value="uint8").tag(sync=True)
    """Payload encoding: ``"uint8"`` (default); ``"float16"`` or ``"float32"`` for exact values."""

    byte_budget = traitlets.Int(wire.DEFAULT_BYTE_BUDGET).tag(sync=True)
    """Largest payload of one update in bytes; larger pictures are downsampled and say so."""

    _selections: ClassVar[frozenset[str]] = frozenset()
    """Traits whose change makes the widget recompute and publish a payload."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.trait_names()))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {', '.join(unknown)}"
            )
        self._seq = itertools.count(1)
        self._current: dict[str, np.ndarray] = {}
        super().__init__(**kwargs)

    def notify_change(self, change: Any) -> None:
        # A selection set from Python and the payload it causes go out as one comm message.
        if change["name"] in self._selections:
            with self.hold_sync():
                super().notify_change(change)
        else:
            super().notify_change(change)

    @property
    def current(self) -> dict[str, np.ndarray]:
        """The float32 arrays on screen right now, unquantized (after any downsampling)."""
        return dict(self._current)

    def _payload(
        self, name: str, values: Any, extra_meta: dict[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]:
        """Encode ``values`` as the ``<name>_data`` / ``<name>_meta`` trait pair.

        Returns the trait values to set; the caller sets them together inside ``hold_sync()``.
        """
        options.setdefault("encoding", self.encoding)
        options.setdefault("byte_budget", self.byte_budget)
        data, meta, shown = wire.encode_shown(values, seq=next(self._seq), **options)
        meta.update(extra_meta or {})
        self._current[name] = shown.numpy()
        return {f"{name}_data": data, f"{name}_meta": meta}

    def _apply(self, updates: dict[str, Any]) -> None:
        """Set several traits as one comm message, clearing any earlier error."""
        with self.hold_sync():
            for key, value in updates.items():
                setattr(self, key, value)
            if self.error:
                self.error = ""

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply a change from the browser; a refused one is rolled back and said in the view."""
        try:
            super().set_state(sync_data)
        except traitlets.TraitError as error:
            self._say(str(error))  # after traitlets' rollback, which undoes what was set inside
            raise

    def _refuse(self, message: str) -> SelectionError:
        """An invalid selection: said in the view (so a browser waiting for an answer gets one)
        and returned to be raised."""
        self._say(message)
        return SelectionError(message)

    def _say(self, message: str) -> None:
        """Show an error. The same message again is cleared first: a view waiting for an answer
        hears one only when the trait changes."""
        if message and self.error == message:
            self.error = ""
        self.error = message

    def _in_range(self, name: str, value: int, count: int) -> int:
        """Validate an index selection (channel, sample, timestep...) against its count."""
        if not 0 <= value < count:
            raise self._refuse(f"{name} {value} is out of range; valid values are 0..{count - 1}")
        return value

    def _valid_class(self, value: int | None, n_classes: int) -> int | None:
        """Validate a target class index (``None``: each sample's predicted class)."""
        if value is not None and n_classes and not 0 <= value < n_classes:
            raise self._refuse(
                f"target {value} is out of range: the output has {n_classes} classes, so "
                f"valid targets are 0..{n_classes - 1} (or None for the predicted class)"
            )
        return value

    def _fail(self, error: Exception) -> None:
        self._say(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Remove everything the widget holds on the model and close its view."""
        self._release()
        # Its Layout is a widget of its own, left in ipywidgets' registry by Widget.close().
        layout = self._trait_values.get("layout")
        super().close()
        if isinstance(layout, ipywidgets.Widget):
            layout.close()

    def _release(self) -> None:
        """Drop references to the model and cached tensors (subclasses extend).

        Also runs from ``__del__`` of a widget whose construction failed half way, hence getattr.
        """
        current = getattr(self, "_current", None)
        if current is not None:
            current.clear()

    def __enter__(self) -> ModelWidget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
