"""LayerProbe: a scikit-learn classifier fitted on each layer's flattened activations, its held-out
accuracy per layer as bars, and a 2-D projection of the selected layer's activations by label."""

from __future__ import annotations

import threading
from typing import Any

import bqplot
import numpy as np
import torch
import traitlets
from torch import nn

from ..capture import probe
from ..capture.layers import check_model, unknown_layer_message
from ..capture.projection import METHODS, project
from .base import ModelWidget, load_bundle
from .composite import CompositeView, forwarded

# d3's category10, for up to ten labels; more labels are drawn with viridis.
CATEGORY10 = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip
CUSTOM = "custom"


def selected_indices(selected: Any) -> list[int]:
    """A bqplot mark's ``selected`` (``None`` or an index array) as a list of ints."""
    return [] if selected is None else [int(index) for index in np.asarray(selected).reshape(-1)]


class LayerProbeCore(ModelWidget):
    """The controls, progress bar and summary line of :class:`LayerProbe`."""

    _esm = load_bundle("layer_probe")
    _selections = frozenset({"layer", "estimator", "projection"})

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Layer whose activations are projected in the scatter (one of ``layers``)."""

    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """The probed layers, in model order (the bars, left to right)."""

    estimator = traitlets.Unicode("logistic").tag(sync=True, echo_update=False)
    """Probe classifier: ``"logistic"``, ``"svm"``, ``"tree"``, or ``"custom"`` (an object)."""

    estimator_options = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Valid values of ``estimator``."""

    projection = traitlets.Enum(list(METHODS), default_value="pca").tag(
        sync=True, echo_update=False
    )
    """2-D projection of the scatter: ``"pca"`` or ``"tsne"``."""

    progress = traitlets.Float(0.0).tag(sync=True)
    """Share of the layers whose probe is fitted, 0..1 (drawn as a bar)."""

    summary = traitlets.Unicode("").tag(sync=True)
    """The line of text under the controls: the split, the best and the selected layer's score."""

    seq = traitlets.Int(0).tag(sync=True)
    """Number of the last completed update of the figures; the view's ``data-mv-seq``."""

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in self.layers:
            raise ValueError(unknown_layer_message(proposal["value"], self.layers))
        return str(proposal["value"])

    @traitlets.validate("estimator")
    def _valid_estimator(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in self.estimator_options:
            raise ValueError(
                f"unknown estimator {proposal['value']!r}; valid estimators are: "
                + ", ".join(self.estimator_options)
            )
        return str(proposal["value"])


class LayerProbe(CompositeView):
    """How linearly (or otherwise) readable the labels are from each layer.

    Each chosen layer's activations for ``inputs`` are flattened to one row per sample; a
    classifier is fitted on a stratified split (``test_size`` held out, fixed ``seed``, the same
    split for all layers) and scored on the held-out samples. Fitting runs in a background thread
    with its progress drawn in the view; :meth:`wait` blocks until it is done. Clicking a bar
    selects that layer for the scatter.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was.
    inputs
        A batch of inputs ``[N, ...]``.
    labels
        One class label per input sample (tensor, array or list).
    layers
        Layer names to probe; by default every conv-like and linear layer with a tensor output.
    estimator
        ``None`` / ``"logistic"`` (standardized logistic regression), ``"svm"`` (standardized
        ``LinearSVC``), ``"tree"`` (``DecisionTreeClassifier``), or a scikit-learn classifier.
    projection
        ``"pca"`` or ``"tsne"`` for the scatter.
    seed, test_size
        The split's seed (also the estimators' and projection's) and held-out share.
    """

    layer = forwarded("layer", "Layer whose activations are shown in the scatter.")
    layers = forwarded("layers", "The probed layers.")
    estimator = forwarded("estimator", "Probe classifier name.")
    projection = forwarded("projection", "2-D projection of the scatter.")
    progress = forwarded("progress", "Share of the layers whose probe is fitted.")
    summary = forwarded("summary", "The summary line of text.")

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        labels: Any,
        layers: list[str] | str | None = None,
        estimator: Any = None,
        *,
        projection: str = "pca",
        seed: int = 0,
        test_size: float = probe.DEFAULT_TEST_SIZE,
        **kwargs: Any,
    ) -> None:
        check_model(model)
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor batch, got {type(inputs).__name__}")
        if projection not in METHODS:
            raise ValueError(
                f"unknown projection {projection!r}; valid projections are: {', '.join(METHODS)}"
            )
        probe.make_estimator(estimator, seed)  # a bad name or object fails here
        self._custom = None if estimator is None or isinstance(estimator, str) else estimator
        self._labels = probe.as_labels(labels, int(inputs.shape[0]))
        chosen = probe.check_layers(model, inputs, layers)
        self._seed = seed
        self._train, self._test = probe.split(self._labels, test_size, seed)
        self._features = probe.layer_features(model, inputs, chosen)
        self._scores: dict[str, probe.ProbeScore] = {}
        self._points: dict[tuple[str, str], np.ndarray] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        options = list(probe.ESTIMATORS) + ([CUSTOM] if self._custom is not None else [])
        name = CUSTOM if self._custom is not None else (estimator or "logistic")
        core = LayerProbeCore(
            layers=chosen, layer=chosen[0], estimator_options=options, estimator=name,
            projection=projection, **kwargs,
        )  # fmt: skip
        self._figures(chosen)
        super().__init__(core, [self._bar_figure, self._scatter_figure])
        self.add_class("mvz-layer-probe")
        self._show_scatter()
        core.observe(self._on_layer, "layer")
        core.observe(self._on_projection, "projection")
        core.observe(self._on_estimator, "estimator")
        self._start_fit()

    def _figures(self, chosen: list[str]) -> None:
        x_scale = bqplot.OrdinalScale(domain=chosen)
        y_scale = bqplot.LinearScale(min=0.0, max=1.0)
        self._bars = bqplot.Bars(
            x=chosen, y=np.zeros(len(chosen)), scales={"x": x_scale, "y": y_scale},
            colors=[CATEGORY10[0]], interactions={"click": "select"}, selected=[0],
            selected_style={"stroke": "black", "stroke-width": "2"},
            unselected_style={"opacity": "0.55"},
            tooltip=bqplot.Tooltip(fields=["x", "y"], formats=["", ".3f"]),
        )  # fmt: skip
        self._bars.observe(self._on_bar_click, "selected")
        self._bar_figure = bqplot.Figure(
            marks=[self._bars],
            axes=[
                bqplot.Axis(scale=x_scale, label="layer", tick_rotate=-30),
                bqplot.Axis(scale=y_scale, side="left", label="held-out accuracy"),
            ],
            title="probe accuracy per layer (click a bar)",
            fig_margin={"top": 40, "bottom": 80, "left": 60, "right": 20},
            layout={"width": "420px", "height": "360px"},
        )
        classes = np.unique(self._labels)
        self._codes = np.searchsorted(classes, self._labels).astype(np.float64)
        if len(classes) <= len(CATEGORY10):
            color_scale = bqplot.ColorScale(
                colors=CATEGORY10[: len(classes)], min=0, max=max(1, len(classes) - 1)
            )
        else:
            color_scale = bqplot.ColorScale(scheme="viridis")
        self._scatter = bqplot.Scatter(
            x=np.zeros(len(self._labels)), y=np.zeros(len(self._labels)), color=self._codes,
            scales={"x": bqplot.LinearScale(), "y": bqplot.LinearScale(), "color": color_scale},
            default_size=24,
        )  # fmt: skip
        self._scatter_figure = bqplot.Figure(
            marks=[self._scatter],
            axes=[
                bqplot.Axis(scale=self._scatter.scales["x"], label="component 1"),
                bqplot.Axis(scale=self._scatter.scales["y"], side="left", label="component 2"),
                bqplot.ColorAxis(scale=color_scale, label="label", side="right"),
            ],
            fig_margin={"top": 40, "bottom": 45, "left": 55, "right": 70},
            layout={"width": "420px", "height": "360px"},
        )

    # -- selections --

    def _on_layer(self, change: dict[str, Any]) -> None:
        index = self.core.layers.index(change["new"])
        if selected_indices(self._bars.selected) != [index]:
            self._bars.selected = [index]
        self._guarded(self._show_scatter)

    def _on_bar_click(self, change: dict[str, Any]) -> None:
        selected = selected_indices(change["new"])
        if selected and self.core.layers[selected[0]] != self.core.layer:
            self.core.layer = self.core.layers[selected[0]]

    def _on_projection(self, change: dict[str, Any]) -> None:
        self._guarded(self._show_scatter)

    def _on_estimator(self, change: dict[str, Any]) -> None:
        self._start_fit()

    def _guarded(self, update: Any) -> None:
        try:
            update()
        except Exception as error:
            self.core._fail(error)
            raise

    # -- the scatter --

    def _show_scatter(self) -> None:
        key = (self.core.layer, self.core.projection)
        if key not in self._points:
            self._points[key] = project(
                self._features[self.core.layer], self.core.projection, seed=self._seed
            )
        points = self._points[key]
        with self._scatter.hold_sync():
            self._scatter.x = points[:, 0].astype(np.float64)
            self._scatter.y = points[:, 1].astype(np.float64)
        self._scatter_figure.title = f"{self.core.layer}: {self.core.projection.upper()} by label"
        with self._lock:
            self._arrays["points"] = points.astype(np.float32)
            self._arrays["labels"] = self._codes.astype(np.float32)
        self._publish()

    # -- fitting --

    def _start_fit(self) -> None:
        """Fit every layer's probe in a background thread; a newer start supersedes older ones."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._scores = {}
        estimator = self._custom if self.core.estimator == CUSTOM else self.core.estimator
        self.core.progress = 0.0
        self._bars.y = np.zeros(len(self.core.layers))
        self._publish()
        self._thread = threading.Thread(
            target=self._fit_all, args=(generation, estimator), name="LayerProbe fit", daemon=True
        )
        self._thread.start()

    def _fit_all(self, generation: int, estimator: Any) -> None:
        layers = list(self.core.layers)
        try:
            for done, name in enumerate(layers, start=1):
                score = probe.fit_probe(
                    self._features[name], self._labels, self._train, self._test,
                    estimator, self._seed, name,
                )  # fmt: skip
                with self._lock:
                    if generation != self._generation:
                        return
                    self._scores[name] = score
                    accuracies = [
                        self._scores[n].accuracy if n in self._scores else 0.0 for n in layers
                    ]
                self._bars.y = np.array(accuracies)
                self.core.progress = done / len(layers)
                self._publish()
        except Exception as error:
            if generation == self._generation:
                self.core._fail(error)

    def wait(self, timeout: float | None = None) -> LayerProbe:
        """Block until the probes are fitted (or ``timeout`` seconds pass); returns the widget."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self

    @property
    def scores(self) -> dict[str, probe.ProbeScore]:
        """The fitted probes so far, by layer (all of them once :meth:`wait` returns)."""
        with self._lock:
            return dict(self._scores)

    @property
    def accuracies(self) -> dict[str, float]:
        """Held-out accuracy per fitted layer."""
        return {name: score.accuracy for name, score in self.scores.items()}

    # -- what is shown --

    def _publish(self) -> None:
        with self._lock:
            scores = dict(self._scores)
            layers = list(self.core.layers)
            self._arrays["accuracy"] = np.array(
                [scores[n].accuracy if n in scores else np.nan for n in layers], dtype=np.float32
            )
        self.core._apply({"summary": self._summary(scores), "seq": next(self.core._seq)})

    def _summary(self, scores: dict[str, probe.ProbeScore]) -> str:
        layers = self.core.layers
        split = f"{len(self._test)} of {len(self._labels)} samples held out"
        if len(scores) < len(layers):
            return (
                f"Fitting {self.core.estimator} probes: {len(scores)} of {len(layers)} layers "
                f"({split})."
            )
        best = max(scores.values(), key=lambda score: score.accuracy)
        chosen = scores[self.core.layer]
        return (
            f"{self.core.estimator} probes, {split}: best {best.layer} {best.accuracy:.3f}; "
            f"{chosen.layer} {chosen.accuracy:.3f} held out, {chosen.train_accuracy:.3f} train, "
            f"{chosen.n_features:,} features"
            + ("" if chosen.converged else " (the solver did not converge)")
            + "."
        )

    def _figure_arrays(self) -> dict[str, np.ndarray]:
        with self._lock:
            return dict(self._arrays)

    def close(self) -> None:
        if getattr(self, "core", None) is None:  # construction failed before the view existed
            return
        with self._lock:
            self._generation += 1  # a running fit stops at its next layer
        self._features = {}
        self._points.clear()
        super().close()
