"""Jupyter widgets for seeing inside live PyTorch models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import demo
from .capture import (
    Capture,
    InputShapeError,
    LayerInfo,
    RecurrentStates,
    attention_maps,
    attention_rollout,
    attribute,
    capture,
    layer_health,
    layers,
    model_tree,
    recurrent_states,
    token_attribution,
)
from .export import export_html
from .widgets import (
    ActivationFunctions,
    Attention,
    Explorer,
    FeatureMaps,
    Filters,
    HiddenStates,
    LayerProbe,
    Saliency,
    TrainingMonitor,
)

try:
    __version__ = version("modelviz-widgets")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "ActivationFunctions",
    "Attention",
    "Capture",
    "Explorer",
    "FeatureMaps",
    "Filters",
    "HiddenStates",
    "InputShapeError",
    "LayerInfo",
    "LayerProbe",
    "RecurrentStates",
    "Saliency",
    "TrainingMonitor",
    "__version__",
    "attention_maps",
    "attention_rollout",
    "attribute",
    "capture",
    "demo",
    "export_html",
    "layer_health",
    "layers",
    "model_tree",
    "recurrent_states",
    "token_attribution",
]
