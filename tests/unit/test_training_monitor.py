"""TrainingMonitor in a training loop: hygiene, hooks only on sampled steps, throttled updates,
reopened logs, background training and the hand-over of the model to other widgets."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture.training_log import pack
from modelviz_widgets.widgets import training_history, training_monitor
from modelviz_widgets.widgets.deadlines import DEADLINES

from ._support import HOOK_DICTS, FrontEnd, SmallCNN, assert_unchanged, model_snapshot


def hook_count(model: nn.Module) -> int:
    return sum(len(getattr(m, attr)) for m in model.modules() for attr in HOOK_DICTS)


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3)
    )


def batches(count: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator))
        for _ in range(count)
    ]


def train(
    model: nn.Module,
    data: list[tuple[torch.Tensor, torch.Tensor]],
    on_step: Callable[[torch.Tensor], Any] | None = None,
) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for x, y in data:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(loss)


def test_monitored_training_is_bit_identical_and_close_leaves_no_hooks():
    data = batches(23)
    twin = make_model()
    train(twin, data)
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=4)
    train(model, data, lambda loss: monitor.step(loss, accuracy=0.5))
    assert hook_count(model) == 0  # step 22 was recorded; step 23 is not sampled
    monitor.step(0.1)  # step 23: arms the hooks for step 24
    assert hook_count(model) > 0
    monitor.close()
    assert hook_count(model) == 0
    model.zero_grad(set_to_none=False)
    twin.zero_grad(set_to_none=False)
    # Same weights, buffers, flags, requires_grad and no hooks as the twin trained unwatched.
    assert_unchanged(model, model_snapshot(twin))
    with pytest.raises(RuntimeError, match="closed"):
        monitor._require_recorder().record(1.0)


def test_hooks_are_attached_only_for_the_forward_of_a_sampled_step():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=5)
    seen = []
    train(model, batches(17), lambda loss: (monitor.step(loss), seen.append(hook_count(model))))
    # After step s is recorded, hooks wait for step s + 1's forward only when it is sampled.
    assert seen == [int((s + 1) % 5 == 0) * 5 for s in range(17)]  # one hook per monitored layer
    assert [s.step for s in monitor.history.samples] == [0, 5, 10, 15]
    counts = [s.activations[0, 0] for s in monitor.history.samples]
    assert counts == [16 * 12] * 4  # each sample saw exactly one forward of its own step
    monitor.close()


def test_an_evaluation_forward_inside_the_loop_is_not_measured():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=2)
    evaluation = torch.randn(50, 6)

    def evaluate_then_step(loss: torch.Tensor) -> None:
        model.eval()
        with torch.no_grad():
            model(evaluation)
        model.train()
        monitor.step(loss)

    train(model, batches(6), evaluate_then_step)
    # Only the training batch of 16 (a forward in train mode with autograd) is counted.
    assert [s.activations[0, 0] for s in monitor.history.samples] == [16 * 12] * 3
    monitor.close()


def test_a_nan_loss_and_a_nan_gradient_are_alerts_not_exceptions():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(batches(6)):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if step == 2:
            model[2].weight.grad[0, 0] = float("nan")
            loss = loss * float("nan")
        monitor.step(loss)
    kinds = {(a["step"], a["layer"], a["kind"]) for a in _published_alerts(monitor)}
    assert (2, "", "loss") in kinds and (2, "2", "nan") in kinds
    assert monitor.history.samples[2].nan_counts[2, 2] == 1
    assert len(monitor.history.steps) == 6
    monitor.close()


def _published_alerts(monitor: mv.TrainingMonitor, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The alerts trait once the last step's delayed update went out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and monitor.latest_step != monitor.history.steps[-1]:
        time.sleep(0.02)
    return list(monitor.alerts)


def history_messages(front: FrontEnd) -> list[tuple[dict[str, Any], list[Any]]]:
    return [
        (msg["content"], buffers)
        for msg, buffers in front.messages
        if msg.get("method") == "custom" and msg["content"].get("type") == "history"
    ]


def test_updates_are_throttled_by_time_and_carry_every_step():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=50)
    front = FrontEnd(monitor.core)
    data = batches(4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < 0.6 or steps < 300:
        x, y = data[steps % 4]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        monitor.step(loss, lr=0.01)
        steps += 1
    elapsed = time.monotonic() - started
    time.sleep(3 * training_monitor.PUBLISH_INTERVAL)  # the last steps go out on a timer
    messages = history_messages(front)
    bound = elapsed / training_monitor.PUBLISH_INTERVAL + 3
    assert 2 <= len(messages) <= bound, (len(messages), steps, elapsed)
    assert steps > 3 * len(messages)  # many steps per message
    # The chunks append to each other and together hold every step, losses included.
    rows = []
    for content, buffers in messages:
        assert content["steps_from"] == sum(len(r) for r in rows)
        shape = content["steps_shape"]
        rows.append(np.frombuffer(buffers[0], dtype="<f8").reshape(shape))
    table = np.concatenate(rows)
    np.testing.assert_array_equal(table[:, 0], np.arange(steps))
    np.testing.assert_array_equal(table[:, 2], monitor.history.losses)
    np.testing.assert_array_equal(table[:, 3], 0.01)
    samples = sum(content["samples_shape"][0] for content, _ in messages)
    assert samples == len(monitor.history.samples) == len(range(0, steps, 50))
    # The loss curve catches up too, within its own (longer) interval.
    deadline = time.monotonic() + 4 * training_monitor.FIGURE_INTERVAL
    while len(monitor.current["loss_0"]) < steps and time.monotonic() < deadline:
        time.sleep(0.05)
    np.testing.assert_array_equal(monitor.current["loss_0"], monitor.history.losses)
    monitor.close()


def logged_run(path: Path, seed: int, steps: int, name: str | None = None) -> mv.TrainingMonitor:
    model = make_model(seed)
    monitor = mv.TrainingMonitor(model, every=3, log=path, name=name)
    train(model, batches(steps, seed), lambda loss: monitor.step(loss, seed=seed))
    monitor.close()
    return monitor


def test_load_overlays_the_runs_of_several_logs(tmp_path):
    first = logged_run(tmp_path / "first.sqlite", 0, 10).history
    second = logged_run(tmp_path / "second.sqlite", 1, 7).history
    third = logged_run(tmp_path / "second.sqlite", 2, 4, name="again").history  # same file
    loaded = mv.TrainingMonitor.load([tmp_path / "first.sqlite", str(tmp_path / "second.sqlite")])
    front = FrontEnd(loaded.core)
    assert [h.name for h in loaded.histories] == ["first", "second", "again"]
    assert [r["name"] for r in loaded.runs] == ["first", "second", "again"]
    assert all(r["finished"] and not r["live"] for r in loaded.runs)
    for original, reopened in zip([first, second, third], loaded.histories, strict=True):
        assert reopened.steps == original.steps
        assert reopened.losses == original.losses
        assert reopened.metrics == original.metrics
        assert [s.step for s in reopened.samples] == [s.step for s in original.samples]
        for a, b in zip(original.samples, reopened.samples, strict=True):
            np.testing.assert_array_equal(pack(a), pack(b))
        assert reopened.layers == original.layers
    assert len(loaded._loss.lines) == 3 and all(line.display_legend for line in loaded._loss.lines)
    np.testing.assert_allclose(loaded.current["loss_1"], second.losses)
    # A browser asking for the history gets every run again, each from its start.
    loaded.core._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": "sync"}}}, "buffers": []}
    )
    resent = history_messages(front)
    assert [(c["run"], c["reset"], c["steps_shape"][0]) for c, _ in resent] == [
        (0, True, 10), (1, True, 7), (2, True, 4)]  # fmt: skip
    with pytest.raises(RuntimeError, match="loaded runs"):
        loaded.step(1.0)
    loaded.close()
    with pytest.raises(FileNotFoundError, match="nope.sqlite"):
        mv.TrainingMonitor.load(tmp_path / "nope.sqlite")


def test_run_in_the_background_reraises_a_failure_in_wait():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=2)

    def failing() -> None:
        train(model, batches(5), monitor.step)
        raise ValueError("the data loader broke")

    thread = monitor.run(failing)
    with pytest.raises(ValueError, match="the data loader broke"):
        monitor.wait(timeout=20)
    assert not thread.is_alive() and not monitor.running
    assert "the data loader broke" in monitor.error
    assert monitor.history.steps == [0, 1, 2, 3, 4]
    monitor.wait()  # the error was raised once; waiting again is quiet
    # A second run works and continues the step count.
    monitor.run(train, model, batches(3), monitor.step)
    monitor.wait(timeout=20)
    assert monitor.history.steps == list(range(8))
    monitor.close()
    assert hook_count(model) == 0


def test_other_widgets_get_the_model_between_two_background_steps():
    torch.manual_seed(0)
    model = SmallCNN()
    images = torch.randn(4, 1, 8, 8)
    monitor = mv.TrainingMonitor(model, every=1)  # hooks armed at every step boundary
    stop = threading.Event()
    modes: list[bool] = []

    def loop() -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        model.train()
        for _ in range(3000):
            if stop.is_set():
                return
            modes.append(model.training)  # a visual forward in eval mode must not overlap
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), torch.arange(4)).backward()
            optimizer.step()
            monitor.step(0.0)

    monitor.run(loop)
    while len(monitor.history.steps) < 5:
        time.sleep(0.01)
    captured = mv.capture(model, images, "features.0")
    maps = mv.FeatureMaps(model, images, layer="features.4")
    done = len(monitor.history.steps)
    assert monitor._thread is not None and monitor._thread.is_alive()  # training still going
    stop.set()
    monitor.wait(timeout=20)
    assert done < 3000 and all(modes)
    assert captured.activations["features.0"].shape == (4, 6, 8, 8)
    assert maps.current["grid"].shape == (8, 4, 4)
    # Every sample counted the training forward only, never the widgets' visual forwards.
    assert {s.activations[0, 0] for s in monitor.history.samples} == {4 * 6 * 8 * 8}
    maps.close()
    monitor.close()
    assert hook_count(model) == 0


@pytest.mark.parametrize("every", [0, -3, 2.5, True, "10"])
def test_every_must_be_a_positive_whole_number(every):
    with pytest.raises(ValueError, match="every must be a positive whole number"):
        mv.TrainingMonitor(make_model(), every=every)


def test_bad_arguments_say_what_is_valid():
    model = make_model()
    with pytest.raises(ValueError, match=r"unknown layer 'fc'.*valid layer names are: 0, 1"):
        mv.TrainingMonitor(model, layers=["0", "fc"])
    with pytest.raises(TypeError, match="unexpected keyword argument.*colour"):
        mv.TrainingMonitor(model, colour="red")
    assert hook_count(model) == 0  # the failed monitor's hooks for step 0 are gone
    with pytest.raises(ValueError, match="nothing to show"):
        mv.TrainingMonitor(None)
    with pytest.raises(ValueError, match="nothing to monitor"):
        mv.TrainingMonitor(nn.Sequential(nn.Flatten()))
    monitor = mv.TrainingMonitor(model, layers=["2"])
    assert monitor.runs[0]["layers"] == ["2"]
    with pytest.raises(ValueError, match="one number; got a tensor of shape \\[2\\]"):
        monitor.step(torch.ones(2))
    with pytest.raises(TypeError, match="a number or a one-element tensor, not str"):
        monitor.step(1.0, accuracy="high")
    monitor.close()
    assert hook_count(model) == 0


def test_publishing_while_training_starts_no_thread_per_update():
    model = make_model()
    before = {thread.ident for thread in threading.enumerate()}
    monitor = mv.TrainingMonitor(model, every=50)
    front = FrontEnd(monitor.core)
    data = batches(4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen: dict[int | None, str] = {}
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < 0.8:
        x, y = data[steps % 4]
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        monitor.step(loss=1.0)
        steps += 1
        time.sleep(0.002)
        seen.update((t.ident, t.name) for t in threading.enumerate() if t.ident not in before)
    time.sleep(3 * training_monitor.PUBLISH_INTERVAL)
    assert len(history_messages(front)) >= 4  # several updates went out...
    assert set(seen.values()) <= {"modelviz-deadlines"}  # ...all from the one deadline thread
    monitor.close()


def made_in_a_kernel(model: nn.Module) -> tuple[mv.TrainingMonitor, asyncio.AbstractEventLoop]:
    """A monitor made by a cell, inside the kernel's running event loop, which then waits (as a
    kernel's does while the next cell trains in its thread) until the test runs it."""
    loop = asyncio.new_event_loop()

    async def cell() -> mv.TrainingMonitor:
        return mv.TrainingMonitor(model, every=5)

    return loop.run_until_complete(cell()), loop


def test_training_in_a_cell_leaves_the_last_steps_to_one_callback_for_its_end(monkeypatch):
    """In a kernel, a cell that trains in the kernel's thread keeps its event loop waiting: the
    steps publish by themselves, and what the last ones recorded goes out once the cell ends,
    from one queued callback, with no deadline (and no thread woken) per publish."""
    model = make_model()
    monitor, loop = made_in_a_kernel(model)
    front = FrontEnd(monitor.core)
    deadlines: list[float] = []
    original = DEADLINES.set
    monkeypatch.setattr(DEADLINES, "set", lambda *a: (deadlines.append(a[1]), original(*a)))
    queued: list[Any] = []
    call_soon = loop.call_soon
    monkeypatch.setattr(loop, "call_soon", lambda *a, **k: (queued.append(a), call_soon(*a, **k)))
    data = batches(4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    started, steps = time.monotonic(), 0
    while time.monotonic() - started < 4 * training_monitor.PUBLISH_INTERVAL:  # the next cell
        x, y = data[steps % 4]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        monitor.step(loss)
        steps += 1
        time.sleep(0.001)
    assert deadlines == [] and len(queued) == 1  # one callback for the cell's end
    assert len(history_messages(front)) >= 2  # published by the steps, while the cell ran
    # The cell ends: the loop runs, and the last steps and the whole loss curve go out.
    loop.run_until_complete(asyncio.sleep(3 * training_monitor.FIGURE_INTERVAL))
    assert monitor.latest_step == steps - 1
    rows = sum(content["steps_shape"][0] for content, _ in history_messages(front))
    assert rows == steps
    np.testing.assert_array_equal(monitor.current["loss_0"], monitor.history.losses)
    monitor.close()
    loop.close()


def test_a_closed_loop_leaves_the_last_steps_to_the_deadline_thread():
    model = make_model()
    monitor, loop = made_in_a_kernel(model)
    train(model, batches(2), monitor.step)
    loop.close()  # with the callback for the cell's end still queued: it will never run
    time.sleep(training_monitor.PUBLISH_INTERVAL)
    train(model, batches(3), monitor.step)  # a publish, then steps after it
    deadline = time.monotonic() + 3.0
    while monitor.latest_step != 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert monitor.latest_step == 4
    monitor.close()


def test_a_monitor_closed_in_its_cell_is_not_kept_by_the_callback_for_the_cells_end():
    model = make_model()
    monitor, loop = made_in_a_kernel(model)
    train(model, batches(3), monitor.step)
    assert monitor._trailing_queued  # a publish waits for the cell's end
    monitor.close()
    reference = weakref.ref(monitor)
    del monitor
    gc.collect()
    assert reference() is None
    loop.run_until_complete(asyncio.sleep(0))  # the callback finds nothing to publish
    loop.close()


def test_the_loss_curve_is_extended_with_the_steps_since_its_last_update():
    history = training_monitor.RunHistory("run", 10, [])
    curve = training_history.Curve()
    for chunk in range(4):
        for step in range(chunk * 900, (chunk + 1) * 900):
            loss = float("nan") if step % 97 == 0 else 1.0 / (step + 1)
            history.add_step(step, 0.0, loss, {})
        steps, losses = curve.update(history)
        everything = np.asarray(history.losses)
        finite = np.isfinite(everything)
        np.testing.assert_array_equal(steps, np.asarray(history.steps, dtype=float)[finite])
        np.testing.assert_array_equal(losses, everything[finite])
