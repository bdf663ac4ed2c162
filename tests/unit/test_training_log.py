"""The training log survives a SIGKILL: every step committed before the kill reads back; the
in-memory history grows by one row a step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import modelviz_widgets as mv
from modelviz_widgets.capture.training_log import RunHistory, pack, unpack
from modelviz_widgets.capture.training_stats import StepStats

REPO_ROOT = Path(__file__).resolve().parents[2]

TRAINER = """
import sys, time
import torch
from torch import nn
import modelviz_widgets as mv

torch.manual_seed(0)
torch.set_num_threads(1)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
monitor = mv.TrainingMonitor(model, every=10, log=sys.argv[1])
x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
for step in range(100_000):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    monitor.step(loss, step_squared=step * step)
    print(step, flush=True)
    time.sleep(0.002)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_run_killed_mid_training_leaves_every_committed_step(tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text(textwrap.dedent(TRAINER))
    log = tmp_path / "run.sqlite"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True, env=env
    )
    printed: list[int] = []
    deadline = time.monotonic() + 60
    try:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(int(line))
            if printed[-1] >= 40 or time.monotonic() > deadline:
                break
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert printed[-1] >= 40, "the trainer did not reach step 40"
    monitor = mv.TrainingMonitor.load(log)
    (history,) = monitor.histories
    assert not history.finished and history.name == "run"
    # Every printed step (committed before step() returned), maybe one or two more after it.
    assert history.steps[: len(printed)] == printed == list(range(len(printed)))
    assert history.metrics["step_squared"][: len(printed)] == [float(s * s) for s in printed]
    assert all(np.isfinite(history.losses))
    sampled = [s.step for s in history.samples]
    assert sampled[: len(range(0, printed[-1] + 1, 10))] == list(range(0, printed[-1] + 1, 10))
    assert set(sampled) <= set(history.steps)
    first = history.samples[0]
    assert first.counts.shape == (3, 4, 32) and first.counts[0, 0].sum() == 8 * 16
    monitor.close()


def test_a_packed_sample_unpacks_to_the_same_numbers():
    rng = np.random.default_rng(0)
    layers = 3
    stats = StepStats(
        step=7,
        counts=rng.integers(0, 100, (layers, 4, 32)),
        scales=rng.random((layers, 4)),
        nan_counts=rng.integers(0, 3, (layers, 4)),
        norms=rng.random((layers, 4)),
        update_norms=np.array([[0.1, 1.0], [np.nan, np.nan], [0.2, 2.0]]),
        activations=rng.random((layers, 5)),
    )
    back = unpack(7, pack(stats), layers)
    for field in ("counts", "scales", "nan_counts", "norms", "update_norms", "activations"):
        np.testing.assert_array_equal(getattr(back, field), getattr(stats, field), field)


def test_a_step_with_metrics_copies_nothing_of_the_history_before_it():
    history = RunHistory("run", 10, [])
    for step in range(20_000):
        history.add_step(step, 0.0, 1.0, {"accuracy": 0.5})
    tracemalloc.start()
    try:
        history.add_step(20_000, 0.0, 1.0, {"accuracy": 0.5})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000  # a list as long as the history would take 160 kB
    history.add_step(20_001, 0.0, 1.0, {"accuracy": 0.5, "lr": 0.1})  # a metric from here on
    assert len(history.metrics["lr"]) == 20_002
    assert np.isnan(history.metrics["lr"][:-1]).all() and history.metrics["lr"][-1] == 0.1
