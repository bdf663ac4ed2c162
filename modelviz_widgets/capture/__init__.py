"""Pure-torch capture of layer outputs and gradients; usable without any widget."""

from __future__ import annotations

from .attention import attention_maps, attention_rollout
from .attribution import attribute
from .hooks import Capture, capture, target_score, visual_mode
from .inputs import InputShapeError
from .layers import KINDS, LayerInfo, layer_kind, layers
from .recurrent import RecurrentStates, recurrent_states
from .tokens import token_attribution

__all__ = [
    "KINDS",
    "Capture",
    "InputShapeError",
    "LayerInfo",
    "RecurrentStates",
    "attention_maps",
    "attention_rollout",
    "attribute",
    "capture",
    "layer_kind",
    "layers",
    "recurrent_states",
    "target_score",
    "token_attribution",
    "visual_mode",
]
