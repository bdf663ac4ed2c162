"""Filters: every filter of a convolution layer as a picture, a 2-D projection of them and
histograms of the layer's weights and biases."""

from __future__ import annotations

from typing import Any

import bqplot
import numpy as np
import torch
import traitlets
from torch import nn

from ..capture.layers import check_model
from ..capture.projection import METHODS, project
from ..capture.weights import (
    DEFAULT_BINS,
    conv_layer,
    conv_layers,
    filter_norms,
    filter_stack,
    flat_filters,
    histogram,
    histogram_edges,
    sort_order,
)
from .base import ModelWidget, load_bundle
from .composite import CompositeView, forwarded
from .filter_figures import bin_centres, histogram_figure, scatter_figure

SORTS = ("index", "norm")


class FiltersCore(ModelWidget):
    """The filter grid, the selected filter large and the controls of :class:`Filters`."""

    _esm = load_bundle("filters")
    _selections = frozenset({"layer", "filter", "input_channel", "sort", "encoding", "byte_budget"})

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Name of the convolution layer shown (a ``named_modules()`` name)."""

    layer_options = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Convolution layers that can be shown: ``{name, module_type, weight_shape}``."""

    filter = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Index of the filter drawn large (its index in the layer's weight, whatever the sort)."""

    n_filters = traitlets.Int(1).tag(sync=True)
    """Number of filters of the layer shown."""

    input_channel = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Input channel of the filters drawn, when they are not drawn as RGB."""

    n_input_channels = traitlets.Int(1).tag(sync=True)
    """Input channels of each filter of the layer shown."""

    rgb = traitlets.Bool(False).tag(sync=True)
    """Whether filters are drawn as colour images (layers with 3 input channels)."""

    sort = traitlets.Enum(list(SORTS), default_value="index").tag(sync=True, echo_update=False)
    """Order of the grid: ``"index"`` as stored, ``"norm"`` largest L2 norm first."""

    projection = traitlets.Enum(list(METHODS), default_value="pca").tag(
        sync=True, echo_update=False
    )
    """Method of the 2-D projection of the flattened filters: ``"pca"`` or ``"tsne"``."""

    colormap = traitlets.Enum(["auto", "viridis", "rdbu", "gray"], default_value="auto").tag(
        sync=True
    )
    """Colormap of single-channel filters: ``"auto"`` is red/blue for weights of both signs."""

    grid_data = traitlets.Bytes(b"").tag(sync=True)
    """Every filter in display order: ``[F, h, w]``, or ``[F, 3, h, w]`` when ``rgb``."""

    grid_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``grid_data`` (shape, dtype, range, non-finite counts, seq, rgb)."""

    filter_data = traitlets.Bytes(b"").tag(sync=True)
    """The selected filter: ``[h, w]``, or ``[3, h, w]`` when ``rgb``."""

    filter_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``filter_data``; also names the layer, filter and input channel."""

    norms_data = traitlets.Bytes(b"").tag(sync=True)
    """L2 norm of each filter by filter index, ``[F]`` float32."""

    norms_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``norms_data``."""

    order_data = traitlets.Bytes(b"").tag(sync=True)
    """Filter index of each grid cell in display order, ``[F]`` float32."""

    order_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``order_data``."""

    def __init__(self, model: nn.Module, layer: str | None = None, **kwargs: Any) -> None:
        self._model: nn.Module | None = check_model(model)
        self._ready = False
        self._stack: torch.Tensor | None = None
        self._norms: torch.Tensor | None = None
        self._order: list[int] = []
        found = conv_layers(model)
        if not found:
            conv_layer(model, layer or "")  # raises the "no convolution layer" error
        options = [
            {
                "name": name,
                "module_type": type(module).__name__,
                "weight_shape": list(module.weight.shape),
            }
            for name, module in found.items()
        ]
        name = layer if layer is not None else next(iter(found))
        first = conv_layer(model, name)
        n_filters, n_channels = (int(size) for size in first.weight.shape[:2])
        # The counts go first, so a filter or input channel given here validates against them.
        super().__init__(
            layer_options=options,
            n_filters=n_filters,
            n_input_channels=n_channels,
            rgb=n_channels == 3,
            **kwargs,
        )
        self.layer = name
        self._ready = True
        self.refresh()

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        assert self._model is not None, "the widget is closed"
        conv_layer(self._model, proposal["value"])
        return str(proposal["value"])

    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> int:
        return self._in_range("filter", proposal["value"], self.n_filters)

    @traitlets.validate("input_channel")
    def _valid_input_channel(self, proposal: dict[str, Any]) -> int:
        return self._in_range("input_channel", proposal["value"], self.n_input_channels)

    @traitlets.observe("layer")
    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._ready:
            self.refresh()

    @traitlets.observe("filter")
    def _on_filter(self, change: dict[str, Any]) -> None:
        if self._ready and self._stack is not None:
            self._apply(self._filter_payload())

    @traitlets.observe("input_channel", "encoding", "byte_budget")
    def _on_input_channel(self, change: dict[str, Any]) -> None:
        if self._ready and self._stack is not None:
            self._apply({**self._grid_payload(), **self._filter_payload()})

    @traitlets.observe("sort")
    def _on_sort(self, change: dict[str, Any]) -> None:
        if self._ready and self._norms is not None:
            self._order = sort_order(self._norms, self.sort)
            self._apply({**self._order_payload(), **self._grid_payload()})

    @property
    def module(self) -> nn.modules.conv._ConvNd:
        """The convolution module of the layer shown."""
        assert self._model is not None, "the widget is closed"
        return conv_layer(self._model, self.layer)

    def refresh(self) -> None:
        """Read the layer's weights again (after a training step, say) and publish everything."""
        try:
            module = self.module
            self._stack = filter_stack(module)
            self._norms = filter_norms(module)
        except Exception as error:
            self._fail(error)
            raise
        self._order = sort_order(self._norms, self.sort)
        n_filters, n_channels = (int(size) for size in self._stack.shape[:2])
        with self.hold_sync():
            # Counts first, so the clamped selections validate.
            self.n_filters = n_filters
            self.n_input_channels = n_channels
            self.rgb = n_channels == 3
            self.set_trait("filter", min(self.filter, n_filters - 1))
            self.set_trait("input_channel", min(self.input_channel, n_channels - 1))
            self._apply(
                {
                    **self._norms_payload(),
                    **self._order_payload(),
                    **self._grid_payload(),
                    **self._filter_payload(),
                }
            )

    def _grid_payload(self) -> dict[str, Any]:
        assert self._stack is not None
        ordered = self._stack[self._order]
        pictures = ordered if self.rgb else ordered[:, self.input_channel]
        return self._payload("grid", pictures, extra_meta={"rgb": self.rgb})

    def _filter_payload(self) -> dict[str, Any]:
        assert self._stack is not None and self._norms is not None
        picture = self._stack[self.filter]
        if not self.rgb:
            picture = picture[self.input_channel]
        meta = {
            "rgb": self.rgb,
            "layer": self.layer,
            "filter": self.filter,
            "input_channel": self.input_channel,
            "norm": float(self._norms[self.filter]),
        }
        return self._payload("filter", picture, extra_meta=meta)

    def _norms_payload(self) -> dict[str, Any]:
        assert self._norms is not None
        return self._payload("norms", self._norms, encoding="float32", scale="linear")

    def _order_payload(self) -> dict[str, Any]:
        order = torch.tensor(self._order, dtype=torch.float32)
        return self._payload(
            "order", order, encoding="float32", scale="linear", extra_meta={"sort": self.sort}
        )

    def _release(self) -> None:
        self._model = None
        self._stack = None
        self._norms = None
        super()._release()


class Filters(CompositeView):
    """Every filter of a convolution layer as a picture, their 2-D projection and histograms.

    The core view (on top) draws every filter of the layer in a grid (as colour images when the
    layer has 3 input channels, otherwise one input channel at a time), sorted by index or norm,
    and the selected filter large with its values on hover. Below it, bqplot figures: the
    flattened filters projected to 2-D (click a point to select that filter), and histograms of
    the layer's weights and biases. Nothing runs the model; the weights are read, never changed.

    Parameters
    ----------
    model
        Any ``nn.Module`` with at least one convolution layer.
    layer
        Convolution layer to open on; by default the first one.
    projection
        ``"pca"`` or ``"tsne"`` (scikit-learn, ``random_state=seed``).
    seed
        Seed of the projection.
    bins
        Number of equal-width histogram bins over each histogram's range.
    **kwargs
        Traits of the core view (``sort``, ``filter``, ``input_channel``, ``colormap``,
        ``encoding``, ``byte_budget``).
    """

    layer = forwarded("layer", "Name of the convolution layer shown.")
    filter = forwarded("filter", "Index of the selected filter (in the layer's weight).")
    input_channel = forwarded("input_channel", "Input channel drawn when filters are not RGB.")
    sort = forwarded("sort", 'Order of the grid: "index" or "norm" (largest first).')
    projection = forwarded("projection", 'Projection of the scatter: "pca" or "tsne".')

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        projection: str = "pca",
        seed: int = 0,
        bins: int = DEFAULT_BINS,
        **kwargs: Any,
    ) -> None:
        self.seed = seed
        self.bins = bins
        histogram_edges(np.zeros(1), bins)  # a bad bin count fails before anything is built
        core = FiltersCore(model, layer=layer, projection=projection, **kwargs)
        self._points = np.zeros((0, 2), dtype=np.float32)
        self._projections: dict[tuple[str, str], np.ndarray] = {}
        self._histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.scatter_figure, self.scatter = scatter_figure()
        self.weight_figure, self.weight_bars = histogram_figure("weights")
        self.bias_figure, self.bias_bars = histogram_figure("biases")
        super().__init__(core, [self.scatter_figure, self.weight_figure, self.bias_figure])
        self._syncing = False
        self._show_layer()
        core.observe(self._on_layer, names="layer")
        core.observe(self._on_projection, names="projection")
        core.observe(self._on_core_filter, names="filter")
        self.scatter.observe(self._on_scatter_selected, names="selected")

    def refresh(self) -> None:
        """Read the weights again (after training steps, say) and redraw everything."""
        self._projections.clear()
        self.core.refresh()
        self._show_layer()

    def _on_layer(self, change: dict[str, Any]) -> None:
        self._show_layer()

    def _on_projection(self, change: dict[str, Any]) -> None:
        self._show_projection()

    def _show_layer(self) -> None:
        module = self.core.module
        with self.weight_bars.hold_sync(), self.bias_bars.hold_sync():
            self._show_histogram("weights", self.weight_figure, self.weight_bars, module.weight)
            self._show_histogram("biases", self.bias_figure, self.bias_bars, module.bias)
        self._show_projection()

    def _show_histogram(
        self, name: str, figure: bqplot.Figure, bars: bqplot.Bars, values: Any
    ) -> None:
        if values is None:
            edges, counts = np.zeros(0), np.zeros(0, dtype=np.int64)
            figure.title = f"{name}: none"
        else:
            edges = histogram_edges(values, self.bins)
            counts = histogram(values, edges)
            figure.title = f"{name} ({int(counts.sum())} values)"
        self._histograms[name] = (counts, edges)
        bars.x = bin_centres(edges) if edges.size else edges
        bars.y = counts.astype(np.float64)

    def _show_projection(self) -> None:
        module = self.core.module
        norms = filter_norms(module).numpy()
        key = (self.core.layer, self.core.projection)
        try:
            # Flipping between layers or methods re-uses what was computed (t-SNE takes a while).
            if key not in self._projections:
                self._projections[key] = project(flat_filters(module), key[1], seed=self.seed)
            points = self._projections[key]
            title = f"{key[1].upper()} of {len(points)} filters"
        except ValueError as error:
            points = np.zeros((0, 2), dtype=np.float32)
            norms = norms[:0]
            title = f"no projection: {error}"
        self._points = points
        self._syncing = True
        try:
            with self.scatter.hold_sync():
                self.scatter.selected = None
                self.scatter.x, self.scatter.y = points[:, 0], points[:, 1]
                self.scatter.color = norms
                if len(points):
                    self.scatter.selected = [self.core.filter]
        finally:
            self._syncing = False
        self.scatter_figure.title = title

    def _on_core_filter(self, change: dict[str, Any]) -> None:
        if self._syncing or not len(self._points):
            return
        self._syncing = True
        try:
            self.scatter.selected = [int(change["new"])]
        finally:
            self._syncing = False

    def _on_scatter_selected(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        selected = change["new"]
        if selected is None or len(selected) == 0:
            return
        # One click selects one point; a brush selecting several picks the first.
        self.core.filter = int(selected[0])

    def _figure_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"projection": self._points.astype(np.float32)}
        for name, key in (("weights", "weight"), ("biases", "bias")):
            counts, edges = self._histograms.get(name, (np.zeros(0), np.zeros(0)))
            arrays[f"{key}_counts"] = counts.astype(np.float32)
            arrays[f"{key}_edges"] = edges.astype(np.float32)
        return arrays
