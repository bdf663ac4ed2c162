"""The Explorer's own view: predictions, input strip, tabs, model tree and layer panel, as synced
traits (see docs/wire-and-dom.md); :class:`~.explorer.Explorer` fills them in."""

from __future__ import annotations

from typing import Any

import traitlets

from .base import ModelWidget, load_bundle

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
