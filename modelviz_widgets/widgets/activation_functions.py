"""ActivationFunctions: the common activation curves and their derivatives, and, given a model, an
activation layer's real pre-activation histogram under them with its saturated or dead share."""

from __future__ import annotations

from typing import Any

import bqplot
import numpy as np
import torch
import traitlets
from torch import nn

from ..capture import stats
from ..capture.layers import check_model, unknown_layer_message
from .base import ModelWidget, load_bundle
from .composite import CompositeView, forwarded

# One colour per function, in stats.FUNCTIONS order (d3's category10).
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
LABELS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}
FADED = 0.25


class ActivationFunctionsCore(ModelWidget):
    """The controls and summary line of :class:`ActivationFunctions` (its figures sit below)."""

    _esm = load_bundle("activation_functions")
    _selections = frozenset({"function", "show_derivative", "layer"})

    function = traitlets.Enum(list(stats.FUNCTIONS), default_value="relu").tag(
        sync=True, echo_update=False
    )
    """Activation function drawn emphasized (one of ``stats.FUNCTIONS``)."""

    show_derivative = traitlets.Bool(True).tag(sync=True, echo_update=False)
    """Whether the derivatives are drawn (dashed) with the curves."""

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Activation layer whose pre-activation values are shown; ``""`` without a model."""

    layer_options = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Activation layers of the model: ``{name, module_type, function}``."""

    summary = traitlets.Unicode("").tag(sync=True)
    """The line of text under the controls: the region share and out-of-range counts."""

    seq = traitlets.Int(0).tag(sync=True)
    """Number of the last completed update of the figures; the view's ``data-mv-seq``."""

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        names = [option["name"] for option in self.layer_options]
        if proposal["value"] not in names and (names or proposal["value"]):
            raise ValueError(unknown_layer_message(proposal["value"], names))
        return str(proposal["value"])


class ActivationFunctions(CompositeView):
    """Sigmoid, tanh, ReLU, Leaky ReLU, GELU and SiLU with their derivatives; with a model and
    inputs, the chosen activation layer's pre-activation histogram under the curves.

    The saturated region of sigmoid and tanh is where ``|f'(x)|`` is below
    ``stats.SATURATION_THRESHOLD`` (5 %) of its maximum; the dead region is ``x <= 0`` for ReLU and
    ``x < 0`` for Leaky ReLU. GELU and SiLU have neither.

    Parameters
    ----------
    model
        Optional ``nn.Module`` with at least one activation module (``ReLU``, ``LeakyReLU``,
        ``GELU``, ``SiLU``, ``Sigmoid``, ``Tanh``); it is left exactly as it was.
    inputs
        A batch of inputs for the model (needed with a model).
    layer
        Activation layer to open on; by default the first. Choosing a layer emphasizes its function.
    """

    function = forwarded("function", "Activation function drawn emphasized.")
    show_derivative = forwarded("show_derivative", "Whether the derivatives are drawn.")
    layer = forwarded("layer", "Activation layer whose pre-activation values are shown.")
    layer_options = forwarded("layer_options", "Activation layers of the model.")
    summary = forwarded("summary", "The summary line of text.")

    def __init__(
        self,
        model: nn.Module | None = None,
        inputs: Any = None,
        layer: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._model: nn.Module | None = None
        self._inputs: Any = None
        self._layers: dict[str, stats.Activation] = {}
        self._values: dict[str, torch.Tensor] = {}
        self._arrays: dict[str, np.ndarray] = {}
        if model is not None:
            self._model = check_model(model)
            self._layers = stats.activation_layers(model)
            if not self._layers:
                raise ValueError(
                    f"{type(model).__name__} has no activation layer to show; ActivationFunctions "
                    "finds modules of type " + ", ".join(t.__name__ for t in stats.MODULE_TYPES)
                )
            if inputs is None:
                raise ValueError("inputs are needed with a model: pass a batch of model inputs")
            self._inputs = inputs
            if layer is not None and layer not in self._layers:
                raise ValueError(unknown_layer_message(layer, self._layers))
        elif inputs is not None or layer is not None:
            raise ValueError("inputs and layer need a model; pass model= too, or neither")
        options = (
            [
                {
                    "name": name,
                    "module_type": type(dict(model.named_modules())[name]).__name__,
                    "function": a.name,
                }
                for name, a in self._layers.items()
            ]
            if model is not None
            else []
        )
        core = ActivationFunctionsCore(layer_options=options, **kwargs)
        self._x = stats.curve_grid()
        self._edges = stats.bin_edges()
        x_values = self._x.numpy()
        self._x_scale = bqplot.LinearScale(min=stats.X_RANGE[0], max=stats.X_RANGE[1])
        self._y_scale = bqplot.LinearScale()
        self._count_scale = bqplot.LinearScale(min=0)
        scales = {"x": self._x_scale, "y": self._y_scale}
        labels = [LABELS[name] for name in stats.FUNCTIONS]
        self._bars = bqplot.Bars(
            x=(self._edges[:-1] + self._edges[1:]) / 2,
            y=np.zeros(len(self._edges) - 1),
            scales={"x": self._x_scale, "y": self._count_scale},
            colors=["#7f7f7f"],
            opacities=[0.35],
            padding=0.0,
            visible=model is not None,
        )
        self._curves = bqplot.Lines(
            x=x_values, y=np.zeros((len(labels), len(x_values))), scales=scales, colors=COLORS,
            labels=labels, display_legend=True, stroke_width=2.5,
        )  # fmt: skip
        self._derivatives = bqplot.Lines(
            x=x_values, y=np.zeros((len(labels), len(x_values))), scales=scales, colors=COLORS,
            line_style="dashed", stroke_width=1.5,
        )  # fmt: skip
        axes = [
            bqplot.Axis(scale=self._x_scale, label="pre-activation x"),
            bqplot.Axis(scale=self._y_scale, side="left", label="f(x); derivative dashed"),
        ]
        if model is not None:
            axes.append(
                bqplot.Axis(scale=self._count_scale, side="right",
                            label="count", grid_lines="none", label_offset="52px")
            )  # fmt: skip
        self._figure = bqplot.Figure(
            marks=[self._bars, self._derivatives, self._curves], axes=axes,
            legend_location="top-left",
            fig_margin={"top": 30, "bottom": 45, "left": 55, "right": 75},
            layout={"width": "620px", "height": "380px"},
        )  # fmt: skip
        super().__init__(core, [self._figure])
        self.add_class("mvz-activation-functions")
        try:
            with core.hold_sync():
                if self._layers:
                    core.layer = layer if layer is not None else next(iter(self._layers))
                    core.function = self._layers[core.layer].name
                self._redraw()
        except Exception:
            self.close()
            raise
        core.observe(self._on_layer, "layer")
        core.observe(self._on_view, ["function", "show_derivative"])

    # -- updates --

    def _on_layer(self, change: dict[str, Any]) -> None:
        name = change["new"]
        # The layer's own function is emphasized; that change redraws through _on_view.
        if self.core.function != self._layers[name].name:
            self.core.function = self._layers[name].name
        else:
            self._safe_redraw()

    def _on_view(self, change: dict[str, Any]) -> None:
        self._safe_redraw()

    def _safe_redraw(self) -> None:
        try:
            self._redraw()
        except Exception as error:
            self.core._fail(error)
            raise

    def _functions(self) -> list[stats.Activation]:
        """The drawn functions; the chosen layer's settings (slope, GELU variant) for its type."""
        own = self._layers.get(self.core.layer)
        return [own if own is not None and own.name == name else stats.Activation(name)
                for name in stats.FUNCTIONS]  # fmt: skip

    def _redraw(self) -> None:
        functions = self._functions()
        curves, derivatives = zip(*(stats.curve(f, self._x) for f in functions), strict=True)
        curve_rows = torch.stack(curves).numpy()
        derivative_rows = torch.stack(derivatives).numpy()
        emphasized = stats.FUNCTIONS.index(self.core.function)
        opacities = [1.0 if i == emphasized else FADED for i in range(len(functions))]
        arrays: dict[str, np.ndarray] = {
            "x": self._x.numpy(),
            "curves": curve_rows,
            "derivatives": derivative_rows,
            "curve": curve_rows[emphasized],
            "derivative": derivative_rows[emphasized],
        }
        summary = self._curve_summary(functions[emphasized])
        bar_counts = None
        if self.core.layer:
            values = self._pre_activation(self.core.layer)
            counts = stats.histogram(values, self._edges)
            fraction = stats.region_fraction(functions[emphasized], values)
            arrays["histogram"] = counts.counts.astype(np.float32)
            arrays["bin_edges"] = counts.edges.astype(np.float32)
            arrays["out_of_range"] = np.array(
                [counts.below, counts.above, counts.nonfinite], dtype=np.float32
            )
            if fraction is not None:
                arrays["region_fraction"] = np.array(fraction, dtype=np.float32)
            bar_counts = counts.counts.astype(np.float64)
            summary = self._layer_summary(functions[emphasized], counts, fraction)
        with self._curves.hold_sync(), self._derivatives.hold_sync(), self._bars.hold_sync():
            self._curves.y = curve_rows
            self._curves.opacities = opacities
            self._derivatives.y = derivative_rows
            self._derivatives.opacities = [o * 0.9 for o in opacities]
            self._derivatives.visible = bool(self.core.show_derivative)
            if bar_counts is not None:
                self._bars.y = bar_counts
        self._arrays = {key: np.asarray(value, dtype=np.float32) for key, value in arrays.items()}
        self.core._apply({"summary": summary, "seq": next(self.core._seq)})

    def _pre_activation(self, name: str) -> torch.Tensor:
        if name not in self._values:
            assert self._model is not None
            self._values[name] = stats.pre_activations(self._model, self._inputs, name)[name]
        return self._values[name]

    def _curve_summary(self, function: stats.Activation) -> str:
        label = LABELS[function.name]
        if function.region:
            return f"{label}: its {function.region} region is {function.region_rule}."
        return f"{label}: no saturated or dead region."

    def _layer_summary(
        self, function: stats.Activation, counts: stats.Histogram, fraction: float | None
    ) -> str:
        layer = self.core.layer
        module_type = next(o["module_type"] for o in self.core.layer_options if o["name"] == layer)
        label = LABELS[function.name]
        head = f"{layer} ({module_type}): {counts.total:,} pre-activation values"
        if fraction is None:
            share = f"; {label} has no saturated or dead region"
        else:
            share = (
                f", {100 * fraction:.1f}% in the {function.region} region of {label} "
                f"({function.region_rule})"
            )
        low, high = stats.X_RANGE
        outside = (
            f"; {counts.below:,} below {low:g} and {counts.above:,} above {high:g} "
            "(outside the histogram)"
        )
        if counts.nonfinite:
            outside += f"; {counts.nonfinite:,} NaN/Inf"
        return head + share + outside + "."

    # -- what is shown --

    def _figure_arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def close(self) -> None:
        if getattr(self, "core", None) is None:  # construction failed before the view existed
            return
        self._model = None
        self._inputs = None
        self._values.clear()
        self._arrays.clear()
        super().close()
