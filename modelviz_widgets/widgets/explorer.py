"""Explorer: one view of any model — its tree with health badges, the view that fits the selected
layer, the model's predictions, the inputs to choose from, and saliency for the chosen class."""

from __future__ import annotations

from typing import Any

import ipywidgets
import numpy as np
import torch
from torch import nn

from ..capture import capture
from ..capture.health import layer_health, worst_layer
from ..capture.hooks import output_logits, split_call
from ..capture.inputs import model_device, move_to_device
from ..capture.layers import check_model
from ..capture.structure import tree_and_output
from .composite import close_tree, forwarded
from .explorer_core import ExplorerCore
from .explorer_payloads import (
    badge_dict,
    batch_size,
    class_scores,
    distributions,
    finite_or_none,
    label_strings,
    own_parameter,
    strip_text,
    summary_line,
    thumbnails,
    top_classes,
)
from .explorer_views import ViewSet, attention_layers, float_inputs, view_for

__all__ = ["Explorer", "ExplorerCore"]


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
        self._captured: tuple[str, torch.Tensor] | None = None  # the last layer captured here
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

    layer = forwarded("layer", "Name of the selected module.")
    sample = forwarded("sample", "Index of the input shown in every view.")
    target = forwarded("target", "Class explained in every view (None: the predicted class).")
    tab = forwarded("tab", "'layer' or 'saliency'.")

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
        self._captured = None
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
        self._captured = None
        self._logits = class_scores(output)
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
            row["badges"] = [] if health is None else [badge_dict(b) for b in health.badges]
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
        n_samples = batch_size(inputs)
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
            core.strip_labels = label_strings(self._labels, n_samples)
            core.summary = summary_line(rows, self._health)
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
            # Nothing of the layer panel depends on the target: the answer is the seq alone.
            self.core._apply({"seq": self.core.seq + 1})

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
            "dead_fraction": finite_or_none(getattr(health, "dead_fraction", None)),
            "saturated_fraction": finite_or_none(getattr(health, "saturated_fraction", None)),
            "grad_rms": finite_or_none(getattr(health, "grad_rms", None)),
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
        return top_classes(self._logits[self.core.sample], self._class_names)

    def _hist_payload(self, name: str) -> dict[str, Any]:
        model = self._model
        assert model is not None
        base, call = split_call(name)
        module = dict(model.named_modules(remove_duplicate=False))[base]
        tensors: list[torch.Tensor | None] = [
            own_parameter(module, "weight"),
            own_parameter(module, "bias"),
            None,
        ]
        node = self._nodes[base]
        if base and node["calls"] and node["calls"][-1]["output_shape"] is not None:
            suffix = "" if call is None else f"#{call}"
            tensors[2] = self._activation(self._canonical.get(base, base) + suffix)
        counts, rows = distributions(tensors)
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
        if self._captured is None or self._captured[0] != name:
            # Kept for the next sample change: the whole batch was captured.
            try:
                self._captured = (name, capture(model, self._inputs, name).activations[name])
            except (ValueError, RuntimeError, TypeError):
                return None
        activation = self._captured[1]
        if activation.dim() > 0 and activation.shape[0] > sample:
            return activation[sample]
        return activation

    def _strip_payload(self, inputs: Any) -> dict[str, Any]:
        core = self.core
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            core.strip_text = strip_text(inputs, self._tokens)
            return {"strip_data": b"", "strip_meta": {}}
        core.strip_text = []
        pictures, rgb = thumbnails(inputs)
        extra = {"rgb": rgb, "total": batch_size(inputs)}
        return core._payload("strip", pictures, scale="linear", extra_meta=extra)
