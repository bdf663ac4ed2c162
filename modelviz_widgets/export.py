"""Static HTML export: one offline file that shows modelviz views as they were.

The page needs no server, kernel or network: each view's ES module and state are embedded
(binary traits as base64) and the runtime ``static/export_runtime.js`` is inlined. It renders
every view over a small read-only model, draws bqplot figures as SVG snapshots and lays out
ipywidgets boxes. A control whose answer needs the kernel says so in the page, unless a frame was
recorded for its value.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets
from ipywidgets.widgets.widget import _remove_buffers

from .export_snapshots import clean, control_copy, figure_snapshot
from .widgets.base import STATIC, ModelWidget

__all__ = ["MAX_FRAME_BYTES", "export_html"]

MAX_FRAME_BYTES = 50_000_000
"""Largest total size of the recorded frames of one export, in bytes."""

REQUESTS: tuple[dict[str, str], ...] = ({"type": "sync"},)
"""Custom messages a view sends when it opens; the widget's replies are recorded and replayed."""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; img-src data: blob:">
<meta name="generator" content="modelviz_widgets export_html">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; font-size: 13px; margin: 16px; color: #222; }}
.mvx-title {{ font-size: 18px; margin: 0 0 12px; }}
.mvx-box {{ display: flex; gap: 12px; align-items: flex-start; }}
.mvx-column {{ flex-direction: column; }} .mvx-row {{ flex-direction: row; }}
.mvx-grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); }}
.mvx-control {{ display: inline-flex; gap: 6px; align-items: center; }}
.mvx-toggles button.mvx-on {{ font-weight: bold; }}
.mvx-unknown, .mvx-failed {{ border: 1px dashed #b00; color: #b00; padding: 6px; }}
.mvx-notice {{ color: #8a5a00; font-style: italic; }}
.mvx-tab > summary {{ font-weight: 600; cursor: pointer; }}
.mvx-text {{ white-space: pre-wrap; }}
</style>
</head>
<body>
<svg id="mvx-svg" width="0" height="0" aria-hidden="true" style="position:absolute"></svg>
<div id="mvx-root" data-mv-export="loading"></div>
<script type="application/json" id="mvx-state">{state}</script>
<script type="module">{runtime}</script>
</body>
</html>
"""


def _json(value: Any) -> str:
    """JSON safe to put inside a <script> element: no ``<``, ``>`` or ``&`` left as themselves."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script_text(source: str) -> str:
    """Module source safe inside a <script> element (``</script`` and ``<!--`` cannot end it)."""
    source = re.sub(r"</(script)", r"<\\/\1", source, flags=re.IGNORECASE)
    return source.replace("<!--", "<\\!--")


def _key(value: Any) -> str:
    """The key of a frame: the value's JSON text, as the page's ``JSON.stringify`` writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _embed(state: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A state dict with its binary values split out as base64: the embedded form and its size."""
    plain, paths, buffers = _remove_buffers(state)
    embedded = {
        "state": clean(plain),
        "buffers": [
            {"path": list(path), "data": base64.b64encode(bytes(buffer)).decode("ascii")}
            for path, buffer in zip(paths, buffers, strict=True)
        ],
    }
    size = len(json.dumps(embedded["state"], default=str)) + sum(len(b) for b in buffers)
    return embedded, size


def _view_state(view: ModelWidget) -> dict[str, Any]:
    """A view's synced state without the bookkeeping traits of ipywidgets and anywidget."""
    return {k: v for k, v in view.get_state().items() if not k.startswith("_") and k != "layout"}


class _Page:
    """What the export collects while walking the widget tree."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, ipywidgets.Widget] = {}
        self.figures: dict[str, dict[str, Any]] = {}

    def module(self, source: str) -> str:
        for key, text in self.modules.items():
            if text == source:
                return key
        key = f"m{len(self.modules)}"
        self.modules[key] = source
        return key

    def walk(self, widget: Any, seen: frozenset[int] = frozenset()) -> dict[str, Any]:
        """The node describing ``widget`` (and, for containers, its children)."""
        name = f"{type(widget).__module__}.{type(widget).__qualname__}"
        if id(widget) in seen:
            return {"kind": "unknown", "widget": f"{name} (shown twice)"}
        seen = seen | {id(widget)}
        if isinstance(widget, ModelWidget):
            return self._view(widget)
        if type(widget).__module__.startswith("bqplot") and hasattr(widget, "marks"):
            self.figures[widget.model_id] = figure_snapshot(widget)
            self.objects[widget.model_id] = widget
            return {"kind": "figure", "id": widget.model_id}
        if isinstance(widget, (ipywidgets.Tab, ipywidgets.Accordion, ipywidgets.Stack)):
            children = [self.walk(child, seen) for child in widget.children]
            titles = [str(t or "") for t in getattr(widget, "titles", ())]
            return {"kind": "tabs", "layout": type(widget).__name__.lower(), "children": children,
                    "titles": titles, "selected": widget.selected_index}  # fmt: skip
        if isinstance(widget, ipywidgets.Box):
            layout = {ipywidgets.HBox: "row", ipywidgets.GridBox: "grid"}.get(type(widget))
            if layout is None:
                layout = "row" if isinstance(widget, ipywidgets.HBox) else "column"
            return {"kind": "box", "layout": layout,
                    "children": [self.walk(child, seen) for child in widget.children]}  # fmt: skip
        if isinstance(widget, (ipywidgets.Label, ipywidgets.HTML, ipywidgets.HTMLMath)):
            # HTML widgets are shown as their text: markup in an export is never parsed.
            return {"kind": "text", "widget": type(widget).__name__, "text": str(widget.value)}
        if isinstance(widget, ipywidgets.DOMWidget) and hasattr(widget, "description"):
            return control_copy(widget)
        return {"kind": "unknown", "widget": name}

    def _view(self, view: ModelWidget) -> dict[str, Any]:
        embedded, _ = _embed(_view_state(view))
        entry: dict[str, Any] = {
            "module": self.module(str(view._esm)),
            "class": type(view).__name__,
            "kernel_traits": sorted(view._selections),
            "replies": _replies(view),
            **embedded,
        }
        self.views[view.model_id] = entry
        self.objects[view.model_id] = view
        return {"kind": "view", "id": view.model_id, "widget": type(view).__name__}


def _replies(view: ModelWidget) -> dict[str, list[dict[str, Any]]]:
    """What the widget answers to each of :data:`REQUESTS`, recorded by catching its ``send``."""
    replies: dict[str, list[dict[str, Any]]] = {}
    if not view._msg_callbacks.callbacks:
        return replies
    for request in REQUESTS:
        sent: list[dict[str, Any]] = []

        def catch(content: Any, buffers: Any = None, sent: list[dict[str, Any]] = sent) -> None:
            encoded = [base64.b64encode(bytes(b)).decode("ascii") for b in buffers or ()]
            sent.append({"content": clean(content), "buffers": encoded})

        view.send = catch
        try:
            view._handle_custom_msg(dict(request), [])
        finally:
            del view.send
        if sent:
            replies[_key(request)] = sent
    return replies


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in after.items() if k not in before or before[k] != v}


def _target(widget: Any, where: str) -> ModelWidget:
    """The view whose traits a frame sets: a ModelWidget, or the core of a composite."""
    core = getattr(widget, "core", None)
    if isinstance(widget, ModelWidget):
        return widget
    if isinstance(core, ModelWidget):
        return core
    raise TypeError(f"{where} must name a modelviz view (or a composite with one); "
                    f"got {type(widget).__name__}")  # fmt: skip


def _frame_plan(widget: Any, frames: Mapping[Any, Any]) -> list[tuple[ModelWidget, str, list[Any]]]:
    if not isinstance(frames, Mapping):
        raise TypeError(f"frames must be a dict, got {type(frames).__name__}")
    if not frames:
        return []
    if all(isinstance(k, str) for k in frames):
        frames = {widget: frames}
    plan = []
    for owner, traits in frames.items():
        view = _target(owner, "a key of frames")
        if not isinstance(traits, Mapping):
            raise TypeError(f"frames[{type(owner).__name__}] must map trait names to values")
        for trait, values in traits.items():
            synced = sorted(view.keys)
            if trait not in synced or trait.startswith("_"):
                valid = ", ".join(name for name in synced if not name.startswith("_"))
                raise ValueError(
                    f"frames: {type(view).__name__} has no synced trait {trait!r}; "
                    f"valid traits are {valid}"
                )
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise TypeError(f"frames[{trait!r}] must be a list of values, got {values!r}")
            plan.append((view, trait, list(values)))
    return plan


def _frame(
    page: _Page, root: Any, tree: dict[str, Any], base: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], int]:
    """What differs from the exported page now: view traits, figures, and the tree if it changed
    (with the views that were not in it). Returns the frame and its size in bytes."""
    now = _Page()
    new_tree = now.walk(root)
    frame: dict[str, Any] = {"views": {}, "figures": {}}
    size = 0
    for key, state in base.items():
        changed = _diff(state, _view_state(page.objects[key]))
        if changed:
            frame["views"][key], bytes_ = _embed(changed)
            size += bytes_
    if new_tree != tree:
        frame["tree"], frame["new_views"] = new_tree, {}
        for key, entry in now.views.items():
            if key not in base:
                entry["module"] = page.module(now.modules[entry["module"]])
                frame["new_views"][key] = entry
                size += len(json.dumps(entry))
    for key, spec in now.figures.items():
        if page.figures.get(key) != spec:
            frame["figures"][key] = spec
            size += len(json.dumps(spec))
    return frame, size


def _record(
    page: _Page, root: Any, tree: dict[str, Any], plan: list[tuple[ModelWidget, str, list[Any]]]
) -> dict[str, Any]:
    """Set each trait to each value, keep what changed in the page, restore the trait."""
    base = {key: _view_state(page.objects[key]) for key in page.views}
    total = 0
    recorded: dict[str, Any] = {}
    for view, trait, values in plan:
        if view.model_id not in base:
            raise ValueError(
                f"frames: the {type(view).__name__} given is not part of the exported widget"
            )
        original = getattr(view, trait)
        # The value on screen is a frame too: the page as exported.
        by_value: dict[str, Any] = {_key(original): {"views": {}, "figures": {}}}
        try:
            for value in values:
                try:
                    setattr(view, trait, value)
                except Exception as error:
                    raise ValueError(f"frames: cannot set {type(view).__name__}.{trait} to "
                                     f"{value!r}: {error}") from error  # fmt: skip
                frame, size = _frame(page, root, tree, base)
                total += size
                if total > MAX_FRAME_BYTES:
                    raise ValueError(
                        f"frames total more than {MAX_FRAME_BYTES / 1e6:g} MB (at {trait}="
                        f"{value!r}); record fewer values or fewer traits"
                    )
                by_value[_key(getattr(view, trait))] = frame
        finally:
            setattr(view, trait, original)
        recorded.setdefault(view.model_id, {})[trait] = by_value
    return recorded


def export_html(
    widget: ipywidgets.Widget,
    path: str | Path,
    *,
    title: str | None = None,
    frames: Mapping[Any, Any] | None = None,
) -> Path:
    """Write ``widget`` as one self-contained HTML file that opens offline in a browser.

    Parameters
    ----------
    widget
        A modelviz view, a composite (Filters, LayerProbe...), or any ipywidgets box holding them.
        Labels and HTML widgets are shown as text, other controls as disabled copies, bqplot figures
        as SVG snapshots; any other widget as a placeholder naming its type.
    path
        The ``.html`` file to write.
    title
        Page title (shown as text).
    frames
        Precomputed answers for controls: ``{"channel": range(8)}`` for a single view, or
        ``{view: {"channel": [...]}}``. Each value is set in Python, what changed (binary payloads
        included) is recorded and the trait restored. Frames are stored in the page, so they add
        about one update's payload per value: above 50 MB in total a ValueError is raised. A
        composite as a key stands for its core view. The value shown now is always a frame. While
        recording, a live view in the notebook follows the values and comes back at the end.

    Returns
    -------
    Path
        The file written: about 17 kB of runtime, each distinct view bundle (about 24 kB) and
        4/3 of the payload bytes (a FeatureMaps of the digits CNN: about 47 kB in all).
    """
    if not isinstance(widget, ipywidgets.Widget):
        raise TypeError(f"export_html needs an ipywidgets widget (a modelviz view or a box of "
                        f"them), got {type(widget).__name__}")  # fmt: skip
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    runtime_path = STATIC / "export_runtime.js"
    if not runtime_path.exists():
        raise FileNotFoundError(
            f"{runtime_path} is missing; build it with `cd js && npm run build`"
        )
    plan = _frame_plan(widget, frames) if frames is not None else []
    page = _Page()
    tree = page.walk(widget)
    recorded = _record(page, widget, tree, plan)
    state = {"title": title or "", "modules": page.modules, "views": page.views,
             "figures": page.figures, "frames": recorded, "tree": tree}  # fmt: skip
    text = _TEMPLATE.format(
        title=html.escape(title or "modelviz export"),
        state=_json(state),
        runtime=_script_text(runtime_path.read_text(encoding="utf-8")),
    )
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out
