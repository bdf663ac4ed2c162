"""Jupyter widgets for seeing inside live PyTorch models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import demo
from .capture import Capture, InputShapeError, LayerInfo, capture, layers
from .widgets import FeatureMaps

try:
    __version__ = version("modelviz-widgets")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Capture",
    "FeatureMaps",
    "InputShapeError",
    "LayerInfo",
    "__version__",
    "capture",
    "demo",
    "layers",
]
