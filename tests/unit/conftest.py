"""Fixtures: a small CNN with real BatchNorm statistics, and a batch of images."""

from __future__ import annotations

import pytest
import torch

from ._support import SmallCNN


@pytest.fixture
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    # Non-trivial BatchNorm statistics, so a visual forward in train mode would visibly move them.
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 1, 8, 8))
    return model


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(4, 1, 8, 8)
