"""Pure-torch capture of layer outputs and gradients; usable without any widget."""

from __future__ import annotations

from .attention import attention_maps, attention_rollout
from .attribution import attribute
from .health import Badge, LayerHealth, layer_health, worst_layer
from .hooks import Capture, capture, target_score, visual_mode
from .inputs import InputShapeError
from .layers import KINDS, LayerInfo, layer_kind, layers
from .recurrent import RecurrentStates, recurrent_states
from .structure import ModuleCall, TreeNode, model_tree
from .tokens import token_attribution

__all__ = [
    "KINDS",
    "Badge",
    "Capture",
    "InputShapeError",
    "LayerHealth",
    "LayerInfo",
    "ModuleCall",
    "RecurrentStates",
    "TreeNode",
    "attention_maps",
    "attention_rollout",
    "attribute",
    "capture",
    "layer_health",
    "layer_kind",
    "layers",
    "model_tree",
    "recurrent_states",
    "target_score",
    "token_attribution",
    "visual_mode",
    "worst_layer",
]
