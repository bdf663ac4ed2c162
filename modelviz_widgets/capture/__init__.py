"""Pure-torch capture of layer outputs and gradients; usable without any widget."""

from __future__ import annotations

from .hooks import Capture, capture, target_score, visual_mode
from .inputs import InputShapeError
from .layers import KINDS, LayerInfo, layer_kind, layers

__all__ = [
    "KINDS",
    "Capture",
    "InputShapeError",
    "LayerInfo",
    "capture",
    "layer_kind",
    "layers",
    "target_score",
    "visual_mode",
]
