"""Losses and metrics that are tensors on an accelerator: plain steps keep them unread (reading one
waits for the device, as ``.item()`` does) and they are read all at once at the next sampled step,
view update or close. There is no accelerator here, so these tests take the same path with CPU
tensors (``Recorder._defer_on_cpu``) and check it against each tensor's own ``.item()``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import modelviz_widgets as mv
from modelviz_widgets.capture import training
from modelviz_widgets.capture.training import MAX_DEFERRED, Recorder
from modelviz_widgets.widgets import training_monitor

from ._support import FrontEnd
from .test_training_monitor import batches, history_messages, make_model, train


def deferring(model: torch.nn.Module, **options: Any) -> Recorder:
    recorder = Recorder(model, **options)
    recorder._defer_on_cpu = True
    return recorder


def passed_at(step: int, loss: torch.Tensor) -> tuple[Any, dict[str, Any]]:
    """What step ``step`` passes: the training loss, or a NaN, an Inf or no loss on some plain
    steps; metrics of several dtypes, one given on some steps only, a Python number beside them."""
    passed: Any = loss
    generator = torch.Generator().manual_seed(step)
    if step == 6:
        passed = loss * math.nan
    if step == 8:
        passed = loss / 0.0
    if step == 12:
        passed = None
    metrics: dict[str, Any] = {
        "accuracy": torch.rand((1,), generator=generator),
        "correct": torch.randint(0, 10_000_000, (), generator=generator),
        "half": torch.rand((), generator=generator).half(),
        "lr": 0.01,
    }
    if step % 4 == 1:
        del metrics["accuracy"]
    return passed, metrics


def by_item(value: Any) -> float:
    """The reference: what ``.item()`` reads."""
    if value is None:
        return math.nan
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def test_deferred_steps_hold_what_item_reads_and_samples_are_as_without():
    data = batches(23)
    models = [make_model(0), make_model(0)]
    recorders = [Recorder(models[0], every=5), deferring(models[1], every=5)]
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    returned: list[list[Any]] = [[], []]
    fed = []
    for step, (x, y) in enumerate(data):
        for model, optimizer, recorder, alerts in zip(
            models, optimizers, recorders, returned, strict=True
        ):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            passed, metrics = passed_at(step, loss.detach())
            alerts += recorder.record(passed, **metrics)[2]
        fed.append(passed_at(step, loss.detach()))
    immediate, deferred = (r.history for r in recorders)
    assert deferred.steps == list(range(21))  # step 20 was sampled: 21 and 22 wait
    returned[1] += recorders[1].resolve()
    assert deferred.steps == immediate.steps == list(range(23))
    np.testing.assert_array_equal(deferred.losses, [by_item(loss) for loss, _ in fed])
    np.testing.assert_array_equal(deferred.losses, immediate.losses)  # NaN where NaN
    for name in ("accuracy", "correct", "half", "lr"):
        reference = [by_item(m[name]) if name in m else math.nan for _, m in fed]
        np.testing.assert_array_equal(deferred.metrics[name], reference)
        np.testing.assert_array_equal(immediate.metrics[name], reference)
    # The samples (hooks armed by a deferred step too) are what they are without deferring.
    assert [s.step for s in deferred.samples] == [0, 5, 10, 15, 20]
    for ours, theirs in zip(deferred.samples, immediate.samples, strict=True):
        for field in ("counts", "norms", "update_norms", "activations", "nan_counts"):
            np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field))
        # count, mean, std measured; the update ratio against the weights one step before
        assert (
            np.isfinite(ours.activations[:, :3]).all() and np.isfinite(ours.update_norms[0]).all()
        )
    # The same alerts, each returned once by record() or resolve().
    kinds = [[(a.step, a.layer, a.kind) for a in h.alerts] for h in (immediate, deferred)]
    assert kinds[0] == kinds[1] and {(6, "", "loss"), (8, "", "loss")} <= set(kinds[0])
    assert [(a.step, a.layer, a.kind) for a in returned[1]] == kinds[1]
    assert [(a.step, a.layer, a.kind) for a in returned[0]] == kinds[0]
    for recorder in recorders:
        recorder.close()


def test_cpu_tensors_are_read_at_once():
    recorder = Recorder(make_model(), every=10)
    for step in range(4):
        recorder.record(torch.tensor(float(step)), accuracy=torch.tensor(0.5))
        assert recorder.history.steps == list(range(step + 1))
    recorder.close()


def test_plain_steps_read_nothing_until_resolved(monkeypatch):
    recorder = deferring(make_model(), every=10)
    recorder.record(torch.tensor(0.5))  # step 0: sampled, read at once

    def read(*args: Any) -> Any:
        raise AssertionError("a plain step read a tensor")

    with monkeypatch.context() as patched:
        for name in ("item", "tolist", "__float__"):
            patched.setattr(torch.Tensor, name, read)
        for step in range(1, 10):
            recorder.record(torch.tensor(step / 10), accuracy=torch.tensor(0.75))
    assert recorder.history.steps == [0]
    recorder.resolve()
    expected = [torch.tensor(value).item() for value in [0.5, *(s / 10 for s in range(1, 10))]]
    assert recorder.history.losses == expected
    accuracy = recorder.history.metrics["accuracy"]
    assert math.isnan(accuracy[0]) and accuracy[1:] == [0.75] * 9  # not given at step 0
    recorder.close()


def test_a_tensor_changed_in_place_later_keeps_its_steps_value():
    recorder = deferring(make_model(), every=100)
    total = torch.zeros(())
    for _ in range(6):
        total += 1  # a running sum the loop keeps in one tensor
        recorder.record(total, seen=total)
    recorder.resolve()
    assert recorder.history.losses == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert recorder.history.metrics["seen"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    recorder.close()


def test_at_most_max_deferred_steps_wait():
    recorder = deferring(make_model(), every=10_000)
    for step in range(1 + MAX_DEFERRED + 4):
        recorder.record(torch.tensor(float(step)))
    assert len(recorder.history.steps) == 1 + MAX_DEFERRED
    assert recorder.history.losses == [float(s) for s in range(1 + MAX_DEFERRED)]
    recorder.close()  # reads the last four
    assert len(recorder.history.steps) == 1 + MAX_DEFERRED + 4


def test_with_a_log_every_step_is_read_and_committed_at_once(tmp_path):
    recorder = deferring(make_model(), every=10, log=tmp_path / "run.sqlite")
    for step in range(5):
        recorder.record(torch.tensor(float(step)))
        assert recorder.history.steps == list(range(step + 1))
    recorder.close()


def test_a_bad_value_on_a_deferred_step_says_what_is_valid():
    recorder = deferring(make_model(), every=10)
    recorder.record(0.5)
    recorder.record(torch.tensor(1.5))
    with pytest.raises(ValueError, match="one number"):
        recorder.record(torch.ones(2))
    with pytest.raises(TypeError, match="real number"):
        recorder.record(torch.tensor(1 + 2j))
    with pytest.raises(TypeError, match="number or a one-element tensor"):
        recorder.record(torch.tensor(1.0), accuracy="high")
    recorder.resolve()
    assert recorder.history.losses == [0.5, 1.5]  # the steps that raised are not recorded
    recorder.close()


def test_a_failed_copy_records_every_step_then_raises_once(monkeypatch):
    recorder = deferring(make_model(), every=10)
    for step in range(5):
        recorder.record(torch.tensor(float(step)))

    def fail(tensors: list[torch.Tensor], synchronize: bool) -> dict[int, float]:
        raise RuntimeError("the batched copy failed")

    monkeypatch.setattr(training, "_read_all", fail)
    with pytest.raises(RuntimeError, match="batched copy"):
        recorder.resolve()
    # Each value read on its own instead: nothing lost, and nothing left to fail again.
    assert recorder.history.losses == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert recorder.resolve() == []
    for step in range(5, 10):
        recorder.record(torch.tensor(float(step)))
    # A step that reads the waiting ones first gets its number only once they are recorded.
    with pytest.raises(RuntimeError, match="batched copy"):
        recorder.record(10.0)
    recorder.record(10.0)
    assert recorder.history.steps == list(range(11))
    assert recorder.history.losses == [float(step) for step in range(11)]
    recorder.close()


def test_values_that_cannot_be_read_are_nan_and_close_still_closes(monkeypatch):
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=10)
    recorder = monitor._recorder
    recorder._defer_on_cpu = True
    monitor.step(torch.tensor(0.5))
    monitor.step(torch.tensor(0.25))  # step 1 waits

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the device went away")

    monkeypatch.setattr(training, "_read_all", fail)
    monkeypatch.setattr(torch.Tensor, "item", fail)
    with pytest.raises(RuntimeError, match="went away"):
        monitor.close()
    assert recorder._closed and not recorder.collector._handles and monitor.core.comm is None
    losses = recorder.history.losses
    assert len(losses) == 2 and losses[0] == 0.5 and math.isnan(losses[1])


def test_the_view_update_and_close_read_the_deferred_steps(monkeypatch):
    monkeypatch.setattr(training_monitor, "PUBLISH_INTERVAL", 60.0)  # no update while training
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=50)
    monitor._recorder._defer_on_cpu = True
    front = FrontEnd(monitor.core)
    losses: list[float] = []

    def step(loss: torch.Tensor) -> None:
        losses.append(loss.item())
        monitor.step(loss, lr=torch.tensor(0.01))

    train(model, batches(30), step)
    assert monitor._recorder.history.steps == [0]  # steps 1-29 wait
    monitor._publish()
    rows = [
        np.frombuffer(buffers[0], dtype="<f8").reshape(content["steps_shape"])
        for content, buffers in history_messages(front)
    ]
    table = np.concatenate(rows)
    np.testing.assert_array_equal(table[:, 0], np.arange(30))
    np.testing.assert_array_equal(table[:, 2], losses)
    np.testing.assert_array_equal(table[:, 3], np.float32(0.01))
    train(model, batches(4, seed=2), step)
    assert len(monitor._recorder.history.steps) == 30
    monitor.close()
    assert monitor._recorder.history.losses == losses


def test_tensors_on_other_devices_are_read_at_once_as_before():
    recorder = Recorder(make_model(), every=10)
    recorder.record(0.5)
    with pytest.raises(RuntimeError, match="meta"):  # a meta tensor has no value to read
        recorder.record(torch.empty((), device="meta"))
    with pytest.raises(RuntimeError, match="meta"):
        recorder.record(0.5, accuracy=torch.empty((), device="meta"))
    assert recorder._deferred == [] and recorder.history.steps == [0]
    recorder.close()
