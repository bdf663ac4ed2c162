"""Model state: a visualization leaves every module's training flag, the BatchNorm running
statistics and ``num_batches_tracked``, parameters, buffers, ``requires_grad`` (a frozen parameter
included) and existing ``.grad`` values bit-identical, starting from train mode and from eval mode,
and never applies dropout.

Peer failures: train-mode forwards that silently inject dropout noise
(TransformerLensOrg/TransformerLens#1787), probe forwards that update BatchNorm statistics, and
contradictory train/eval configurations (johnmarktaylor91/torchlens#157).
"""

from __future__ import annotations

import pytest
import torch

from ._models import (
    SUBJECTS,
    Subject,
    assert_unchanged,
    close,
    dropout_calls,
    finish,
    make,
    model_snapshot,
)


def has_state_to_lose(model: torch.nn.Module) -> None:
    """The fixture models carry what a careless forward would change."""
    assert any(p.grad is not None for p in model.parameters()), "no existing .grad"
    assert any(not p.requires_grad for p in model.parameters()), "no frozen parameter"


@pytest.mark.parametrize("train", [True, False], ids=["from_train", "from_eval"])
@pytest.mark.parametrize("subject", SUBJECTS, ids=str)
def test_model_state_is_bit_identical_and_dropout_never_applied(subject: Subject, train: bool):
    model, inputs = make(subject)
    has_state_to_lose(model)
    model.train(train)
    before = model_snapshot(model)
    made = finish(subject.build(model, inputs))
    if subject.drive is not None:
        subject.drive(made)
    # While the widget is open, not only after close(): nothing waits for close to be put back
    # (but the hooks a TrainingMonitor keeps armed for its next step).
    now = model_snapshot(model)
    open_before = {**before, "hooks": now["hooks"]} if subject.holds_hooks else before
    assert_unchanged(model, open_before)
    close(made)
    assert_unchanged(model, before)
    calls = dropout_calls(model)
    assert True not in calls, f"{subject}: dropout ran in training mode in a visual forward"
    if subject.forward:
        assert calls, f"{subject}: the recording dropout never ran (is the model really run?)"


def test_a_model_with_its_own_train_override_gets_its_flags_back():
    """A model whose ``train()`` does more than set flags (freezing BatchNorm, a common fine-tuning
    pattern) still ends with each module's own flag."""

    class FrozenNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.norm = torch.nn.BatchNorm2d(2)
            self.head = torch.nn.Linear(2 * 8 * 8, 3)

        def train(self, mode: bool = True) -> FrozenNorm:
            super().train(mode)
            self.norm.eval()  # always frozen
            return self

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(self.conv(x)).flatten(1))

    import modelviz_widgets as mv

    model = FrozenNorm().train()
    before = model_snapshot(model)
    x = torch.randn(2, 1, 8, 8)
    mv.capture(model, x, "norm", grads=True)
    with mv.FeatureMaps(model, x) as view:
        view.layer = "norm"
    assert_unchanged(model, before)
