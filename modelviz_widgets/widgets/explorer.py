"""Explorer: one view of any model — its tree with health badges, the view that fits the selected
layer, the model's predictions, the inputs to choose from, and saliency for the chosen class."""

from __future__ import annotations

import math
from typing import Any

import ipywidgets
import numpy as np
import torch
import torch.nn.functional as F
import traitlets
from torch import nn

from ..capture import capture
from ..capture.health import layer_health, worst_layer
from ..capture.hooks import output_logits, split_call
from ..capture.inputs import model_device, move_to_device
from ..capture.layers import check_model
from ..capture.structure import tree_and_output
from .base import ModelWidget, load_bundle
from .composite import close_tree
from .explorer_views import ViewSet, attention_layers, float_inputs, view_for

HIST_BINS = 32
"""Bins of each distribution drawn for the selected layer."""

HIST_ROWS = ("weight", "bias", "activation")
"""The distributions drawn for the selected layer, in payload row order."""

STRIP_LIMIT = 64
"""Most inputs shown in the input strip (the first ones of a larger batch)."""

THUMBNAIL = 32
"""Largest side of an input thumbnail, in cells."""

TOP_K = 5
"""Predicted classes listed above the tree."""


class ExplorerCore(ModelWidget):
    """The Explorer's own view: predictions, input strip, tabs, model tree, layer summary.

    The specialist view of the selected layer is laid out beside it by :class:`Explorer`.
    """

    _esm = load_bundle("explorer")
    _selections = frozenset({"layer", "sample", "target", "tab"})

    tree = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Every module in model order: name, parent, depth, type, kind, shape, parameters, calls,
    other names of a shared module, activation magnitude and health badges."""

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Name of the selected module."""

    layer_info = traitlets.Dict().tag(sync=True)
    """The selected module's details: the tree node, its health figures, the view it opens."""

    view_kind = traitlets.Unicode("none").tag(sync=True)
    """The view beside the tree: feature_maps, hidden_states, attention or none."""

    tab = traitlets.Enum(["layer", "saliency"], default_value="layer").tag(
        sync=True, echo_update=False
    )
    """What the right-hand pane shows: the selected layer's view, or saliency for the target."""

    saliency_available = traitlets.Bool(False).tag(sync=True)
    """Whether the inputs are floating point, so that saliency applies."""

    sample = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Index of the input shown in every view."""

    n_samples = traitlets.Int(1).tag(sync=True)
    """Number of inputs."""

    target = traitlets.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Class explained in every view; ``None`` for the predicted class of the sample."""

    n_classes = traitlets.Int(0).tag(sync=True)
    """Width of the model's output (0 when it is not one score per class)."""

    predictions = traitlets.List(traitlets.Dict()).tag(sync=True)
    """The sample's most probable classes: ``{class, label, probability}``."""

    output_shape = traitlets.List(traitlets.Int()).tag(sync=True)
    """Shape of the model's output for the inputs."""

    strip_data = traitlets.Bytes(b"").tag(sync=True)
    """Thumbnails of the inputs, ``[N, h, w]`` or ``[N, 3, h, w]`` (RGB), encoded."""

    strip_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``strip_data``; ``rgb`` says whether the thumbnails are colour images."""

    strip_text = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """The inputs as text (sequences), one line per input, when they are not images."""

    strip_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Each input's label, when labels were given."""

    hist_data = traitlets.Bytes(b"").tag(sync=True)
    """The selected module's distributions, ``[3, BINS]`` counts (float32): its weight, its bias
    and its output for the selected sample."""

    hist_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``hist_data``: ``rows`` (each ``{name, low, high, count}`` or null)."""

    summary = traitlets.Unicode("").tag(sync=True)
    """One line about the model: modules, parameters, badges."""

    seq = traitlets.Int(0).tag(sync=True)
    """Bumped after each answered selection."""

    def __init__(self, **kwargs: Any) -> None:
        self._names: list[str] = []
        self._calls: set[str] = set()  # "name#k" of the modules called more than once
        super().__init__(**kwargs)

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        name = str(proposal["value"])
        if name in self._calls:
            return name
        if self._names and name not in self._names:
            shown = ", ".join(repr(n) for n in self._names[1:41])
            more = " ..." if len(self._names) > 41 else ""
            raise self._refuse(f"unknown layer {name!r}; valid layer names are: {shown}{more}")
        return name

    @traitlets.validate("sample")
    def _valid_sample(self, proposal: dict[str, Any]) -> int:
        return self._in_range("sample", int(proposal["value"]), self.n_samples)

    @traitlets.validate("target")
    def _valid_target(self, proposal: dict[str, Any]) -> int | None:
        return self._valid_class(proposal["value"], self.n_classes)


class Explorer(ipywidgets.HBox):
    """Any model at a glance: its module tree on the left, the view that fits the selected layer
    on the right, linked selections throughout.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was.
    inputs
        A batch for the model: images ``[N, C, H, W]``, signals, features, or token ids
        ``[N, T]``. ``explorer.inputs = ...`` replaces it and re-runs every open view.
    tokens
        For sequence inputs: one list of strings per sequence (shown in the input strip and the
        recurrent and attention views).
    labels
        Each input's true label (shown in the input strip).
    class_names
        Names of the output classes, for the predictions list.
    layer
        The module to open on; by default the one most worth looking at (see below).

    The tree carries a health badge per layer (dead or saturated units, vanishing or exploding
    gradients, NaN / Inf) from one forward and backward pass, and the Explorer opens on the layer
    most worth looking at.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        tokens: Any = None,
        labels: Any = None,
        class_names: Any = None,
        layer: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._model: nn.Module | None = check_model(model)
        self._tokens = tokens
        self._labels = labels
        self._class_names = [str(name) for name in class_names] if class_names else None
        self.core = ExplorerCore(**kwargs)
        self.detail = ipywidgets.VBox(layout=ipywidgets.Layout(flex="1 1 auto"))
        self._views: ViewSet | None = None
        self._nodes: dict[str, dict[str, Any]] = {}
        self._ready = False
        super().__init__(children=[self.core, self.detail])
        self.add_class("mvz-explorer")
        try:
            self._load(inputs)
        except Exception:
            self.close()
            raise
        if layer is not None:
            self.core.layer = layer
        self.core.observe(self._on_layer, "layer")
        self.core.observe(self._on_tab, "tab")
        self.core.observe(self._on_sample, "sample")
        self.core.observe(self._on_target, "target")
        self._ready = True
        self._show()

    # -- public --

    @property
    def inputs(self) -> Any:
        """The model's inputs; assigning new ones re-runs the tree, the badges and every view."""
        return self._inputs

    @inputs.setter
    def inputs(self, value: Any) -> None:
        self._ready = False
        try:
            self._load(value, keep_layer=True)
        finally:
            self._ready = True
        self._show()

    layer = property(
        lambda self: self.core.layer,
        lambda self, value: setattr(self.core, "layer", value),
        doc="Name of the selected module.",
    )
    sample = property(
        lambda self: self.core.sample,
        lambda self, value: setattr(self.core, "sample", value),
        doc="Index of the input shown in every view.",
    )
    target = property(
        lambda self: self.core.target,
        lambda self, value: setattr(self.core, "target", value),
        doc="Class explained in every view (None: the predicted class).",
    )
    tab = property(
        lambda self: self.core.tab,
        lambda self, value: setattr(self.core, "tab", value),
        doc="'layer' or 'saliency'.",
    )

    @property
    def health(self) -> dict[str, Any]:
        """Each layer's :class:`~modelviz_widgets.capture.health.LayerHealth`."""
        return dict(self._health)

    @property
    def views(self) -> dict[str, Any]:
        """The specialist views opened so far, by kind."""
        return {} if self._views is None else self._views.open_views

    @property
    def current(self) -> dict[str, np.ndarray]:
        """The float32 arrays the Explorer shows right now (its own and the open view's)."""
        shown = dict(self.core.current)
        for child in self.detail.children:
            shown.update(getattr(child, "current", {}))
        return shown

    @property
    def error(self) -> str:
        return self.core.error

    def close(self) -> None:
        """Close every view, drop the model and the inputs."""
        views = self.__dict__.get("_views")
        if views is not None:
            views.close()
            self._views = None
        self._model = None
        self._inputs = None
        if "core" in self.__dict__:
            self.core.close()
        close_tree(self)

    def __enter__(self) -> Explorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- loading --

    def _load(self, inputs: Any, keep_layer: bool = False) -> None:
        model = self._model
        assert model is not None
        inputs = move_to_device(inputs, model_device(model))
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 0:
            raise ValueError("inputs must be a batch [N, ...], got a 0-d tensor")
        nodes, output = tree_and_output(model, inputs)
        self._health = layer_health(model, inputs, target=None)
        self._inputs = inputs
        self._logits = _class_scores(output)
        if self._views is not None:
            self._views.close()
        self._views = ViewSet(model, inputs, self._tokens)
        attention = attention_layers(model)
        modules = dict(model.named_modules(remove_duplicate=False))
        first = {id(module): name for name, module in reversed(list(model.named_modules()))}
        self._canonical = {name: first[id(module)] for name, module in modules.items()}
        rows = []
        for node in nodes:
            row = node.as_dict()
            health = self._health.get(node.name)
            row["badges"] = [] if health is None else [_badge(b) for b in health.badges]
            tensor_output = bool(node.calls) and node.calls[-1].output_shape is not None
            row["view"] = view_for(modules[node.name], node.name, attention, tensor_output)
            rows.append(row)
        self._nodes = {row["name"]: row for row in rows}
        self.core._names = list(self._nodes)
        self.core._calls = {
            f"{row['name']}#{k}"
            for row in rows
            if row["name"] and len(row["calls"]) > 1
            for k in range(len(row["calls"]))
        }
        n_samples = _batch_size(inputs)
        core = self.core
        with core.hold_sync():
            core.tree = rows
            core.n_samples = n_samples
            core.set_trait("sample", min(core.sample, n_samples - 1))
            core.n_classes = 0 if self._logits is None else int(self._logits.shape[1])
            core.output_shape = list(output_logits(output).shape)
            core.saliency_available = float_inputs(inputs)
            if core.target is not None and core.target >= core.n_classes:
                core.set_trait("target", None)
            core.strip_labels = _label_strings(self._labels, n_samples)
            core.summary = _summary(rows, self._health)
            if not (keep_layer and core.layer in self._nodes):
                core.set_trait("layer", self._opening_layer(rows))
            core._apply(self._strip_payload(inputs))

    def _opening_layer(self, rows: list[dict[str, Any]]) -> str:
        """The layer worst off, else the first convolution, else the first layer with a view."""
        worst = worst_layer(self._health)
        if worst is not None and worst in self._nodes:
            return worst
        for kind in ("conv", "recurrent", "attention"):
            for row in rows:
                if row["name"] and row["kind"] == kind:
                    return str(row["name"])
        for row in rows:
            if row["name"] and row["view"] != "none" and not row["children"]:
                return str(row["name"])
        return str(rows[1]["name"]) if len(rows) > 1 else ""

    # -- answering selections --

    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._guarded(self._show)

    def _on_tab(self, change: dict[str, Any]) -> None:
        if self._ready:
            if change["new"] == "saliency" and not self.core.saliency_available:
                self.core.set_trait("tab", "layer")
                self.core._say("saliency needs floating-point inputs (images, signals, features)")
                return
            self._guarded(self._show)

    def _on_sample(self, change: dict[str, Any]) -> None:
        if self._ready and self._views is not None:
            self._guarded(lambda: self._views.set_sample(change["new"]) if self._views else None)
            self._guarded(self._publish_layer)

    def _on_target(self, change: dict[str, Any]) -> None:
        if self._ready and self._views is not None:
            self._guarded(lambda: self._views.set_target(change["new"]) if self._views else None)
            self._guarded(self._publish_layer)

    def _guarded(self, work: Any) -> None:
        try:
            work()
        except Exception as error:
            self.core._fail(error)

    def _show(self) -> None:
        """Lay out the view of the selected layer (or saliency), then publish the layer panel."""
        assert self._views is not None
        core = self.core
        name = core.layer
        base, call = split_call(name)
        if base not in self._nodes or (call is not None and name not in core._calls):
            raise core._refuse(f"unknown layer {name!r}")
        node = self._nodes[base]
        if core.tab == "saliency" and core.saliency_available:
            shown = [self._views.saliency()]
        else:
            canonical = self._canonical.get(base, base) + ("" if call is None else f"#{call}")
            shown = self._views.show(node["view"], canonical) if node["view"] != "none" else []
        self.detail.children = tuple(shown)
        self._publish_layer()

    def _publish_layer(self) -> None:
        core = self.core
        name = core.layer
        base, call = split_call(name)
        node = self._nodes[base]
        health = self._health.get(self._canonical.get(base, base))
        info = {
            **node,
            "call": call,
            "dead_fraction": _number(getattr(health, "dead_fraction", None)),
            "saturated_fraction": _number(getattr(health, "saturated_fraction", None)),
            "grad_rms": _number(getattr(health, "grad_rms", None)),
        }
        updates: dict[str, Any] = {
            "layer_info": info,
            "view_kind": node["view"],
            "predictions": self._predictions(),
        }
        updates.update(self._hist_payload(name))
        updates["seq"] = core.seq + 1
        core._apply(updates)

    # -- payloads --

    def _predictions(self) -> list[dict[str, Any]]:
        if self._logits is None:
            return []
        probabilities = torch.softmax(self._logits[self.core.sample].float(), dim=0)
        k = min(TOP_K, probabilities.numel())
        values, classes = probabilities.topk(k)
        names = self._class_names
        return [
            {
                "class": int(c),
                "label": names[int(c)] if names and int(c) < len(names) else str(int(c)),
                "probability": float(p),
            }
            for p, c in zip(values.tolist(), classes.tolist(), strict=True)
        ]

    def _hist_payload(self, name: str) -> dict[str, Any]:
        model = self._model
        assert model is not None
        base, call = split_call(name)
        module = dict(model.named_modules(remove_duplicate=False))[base]
        tensors: list[torch.Tensor | None] = [_own(module, "weight"), _own(module, "bias"), None]
        node = self._nodes[base]
        if base and node["calls"] and node["calls"][-1]["output_shape"] is not None:
            suffix = "" if call is None else f"#{call}"
            tensors[2] = self._activation(self._canonical.get(base, base) + suffix)
        counts = np.zeros((len(HIST_ROWS), HIST_BINS), dtype=np.float32)
        rows: list[dict[str, Any] | None] = []
        for index, tensor in enumerate(tensors):
            if tensor is None or tensor.numel() == 0:
                rows.append(None)
                continue
            values = tensor.detach().float().cpu().reshape(-1).numpy()
            finite = values[np.isfinite(values)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            if high <= low:
                low, high = low - 0.5, high + 0.5
            counts[index], _ = np.histogram(finite, bins=HIST_BINS, range=(low, high))
            rows.append(
                {
                    "name": HIST_ROWS[index],
                    "low": low,
                    "high": high,
                    "count": int(values.size),
                    "nonfinite": int(values.size - finite.size),
                }
            )
        return self.core._payload(
            "hist", counts, extra_meta={"rows": rows, "layer": name}, encoding="float32"
        )

    def _activation(self, name: str) -> torch.Tensor | None:
        """The module's output for the selected sample: from the feature-map view's capture when
        it shows this layer (no extra forward), else from one capture."""
        sample = self.core.sample
        maps_view = self.views.get("feature_maps")
        if maps_view is not None and maps_view.layer == name and maps_view.maps is not None:
            return maps_view.maps[sample]
        model = self._model
        assert model is not None
        try:
            activation = capture(model, self._inputs, name).activations[name]
        except (ValueError, RuntimeError, TypeError):
            return None
        if activation.dim() > 0 and activation.shape[0] > sample:
            return activation[sample]
        return activation

    def _strip_payload(self, inputs: Any) -> dict[str, Any]:
        core = self.core
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            core.strip_text = _strip_text(inputs, self._tokens)
            return {"strip_data": b"", "strip_meta": {}}
        core.strip_text = []
        shown = inputs[:STRIP_LIMIT].detach().float().cpu()
        rgb = shown.dim() == 4 and shown.shape[1] == 3
        if shown.dim() == 4:
            pictures = shown if rgb else shown.mean(dim=1, keepdim=True)
            height, width = pictures.shape[2:]
            side = max(height, width)
            if side > THUMBNAIL:
                size = (max(1, height * THUMBNAIL // side), max(1, width * THUMBNAIL // side))
                pictures = F.adaptive_avg_pool2d(pictures, size)
            pictures = pictures if rgb else pictures[:, 0]
        else:
            flat = shown.reshape(shown.shape[0], 1, -1)
            pictures = F.adaptive_avg_pool1d(flat, min(flat.shape[2], 64))
        extra = {"rgb": bool(rgb), "total": _batch_size(inputs)}
        return core._payload("strip", pictures, scale="linear", extra_meta=extra)


def _class_scores(output: Any) -> torch.Tensor | None:
    """``[N, classes]`` scores when the model's output is one score per class."""
    try:
        logits = output_logits(output)
    except (TypeError, ValueError):
        return None
    if logits.dim() != 2 or logits.shape[1] < 2 or not logits.is_floating_point():
        return None
    return logits.detach()


def _own(module: nn.Module, name: str) -> torch.Tensor | None:
    value = module._parameters.get(name)
    return value.detach() if isinstance(value, torch.Tensor) else None


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() > 0 else 1
    if isinstance(inputs, (tuple, list)) and inputs:
        return _batch_size(inputs[0])
    if isinstance(inputs, dict) and inputs:
        return _batch_size(next(iter(inputs.values())))
    return 1


def _badge(badge: Any) -> dict[str, str]:
    return {"kind": badge.kind, "level": badge.level, "message": badge.message}


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _label_strings(labels: Any, n: int) -> list[str]:
    if labels is None:
        return []
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    if len(values) != n:
        raise ValueError(f"got {len(values)} labels for {n} inputs; pass one label per input")
    return [str(value) for value in values]


def _strip_text(inputs: Any, tokens: Any) -> list[str]:
    """One line per input sequence: its tokens, or its ids."""
    if tokens is not None:
        rows = list(tokens)
        if rows and all(isinstance(token, str) for token in rows):
            rows = [rows]
        return [" ".join(map(str, row))[:200] for row in rows[:STRIP_LIMIT]]
    if isinstance(inputs, torch.Tensor) and inputs.dim() >= 1:
        ids = inputs[:STRIP_LIMIT].reshape(min(STRIP_LIMIT, inputs.shape[0]), -1)
        return [" ".join(str(v) for v in row[:40].tolist()) for row in ids]
    return []


def _summary(rows: list[dict[str, Any]], health: dict[str, Any]) -> str:
    flagged = sum(1 for h in health.values() if h.badges)
    params = rows[0]["n_params"] if rows else 0
    text = f"{len(rows) - 1} modules, {params:,} parameters"
    return text + (f"; {flagged} layer(s) flagged" if flagged else "; no layer flagged")
