"""The widgets: one public view per module."""

from __future__ import annotations

from .feature_maps import FeatureMaps

__all__ = ["FeatureMaps"]
