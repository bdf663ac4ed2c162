"""The widgets: one public view per module."""

from __future__ import annotations

from .activation_functions import ActivationFunctions
from .attention import Attention
from .explorer import Explorer
from .feature_maps import FeatureMaps
from .filters import Filters
from .hidden_states import HiddenStates
from .layer_probe import LayerProbe
from .saliency import Saliency
from .training_monitor import TrainingMonitor

__all__ = [
    "ActivationFunctions",
    "Attention",
    "Explorer",
    "FeatureMaps",
    "Filters",
    "HiddenStates",
    "LayerProbe",
    "Saliency",
    "TrainingMonitor",
]
