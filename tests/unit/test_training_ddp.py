"""TrainingMonitor under DistributedDataParallel: two gloo processes on the CPU.

Each rank trains on its own data; rank 0 records the all-reduced gradients' norms and the
activation statistics of both ranks' batches, and is the only one to keep a history or a log.
What each rank saw is saved by the worker itself (hooks and norms written here), independently of
the monitor, and compared in the parent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import training
from modelviz_widgets.capture.training_stats import Reducer

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 5
EVERY = 2

WORKER = """
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import training
from modelviz_widgets.capture.training_stats import Reducer

rank, out = int(sys.argv[1]), Path(sys.argv[2])
steps, every = int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
dist.init_process_group("gloo", rank=rank, world_size=2)
torch.manual_seed(0)  # the same initial weights on both ranks
model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
ddp = nn.parallel.DistributedDataParallel(model)
optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
monitor = mv.TrainingMonitor(ddp, every=every, log=out / f"rank{rank}.sqlite")
generator = torch.Generator().manual_seed(100 + rank)  # different data on each rank

outputs = {}
for index, module in enumerate(model):
    module.register_forward_hook(
        lambda m, a, o, i=index: outputs.__setitem__(i, o.detach().clone())
    )
grad_norms, losses, sums, counts, peaks = [], [], [], [], []
for step in range(steps):
    x = torch.randn(6 + 2 * rank, 5, generator=generator)  # batch sizes differ too
    y = torch.randint(0, 3, (len(x),), generator=generator)
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(ddp(x), y)
    loss.backward()  # DDP all-reduces (averages) the gradients here
    grad_norms.append([[float(torch.linalg.norm(p.grad)) for p in (layer.weight, layer.bias)]
                       for layer in (model[0], model[2])])
    optimizer.step()
    losses.append(float(loss))
    sums.append([[float(outputs[i].double().sum()), float((outputs[i].double() ** 2).sum())]
                 for i in range(3)])
    counts.append([outputs[i].numel() for i in range(3)])
    peaks.append(outputs[1].amax(dim=0).numpy())
    late = {"late": 1.0 + rank} if step == 3 else {}  # a metric passed on one step only
    monitor.step(loss, batch=len(x), **late)
history = monitor.history
np.savez(
    out / f"seen{rank}.npz",
    grad_norms=np.array(grad_norms), losses=np.array(losses), sums=np.array(sums),
    counts=np.array(counts), peaks=np.array(peaks),
    history_steps=np.array(history.steps, dtype=np.int64),
    history_samples=np.array([s.step for s in history.samples], dtype=np.int64),
)
monitor.close()
dist.barrier()  # neither rank tears gloo down while the other still talks to it
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), str(out), str(STEPS), str(EVERY)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    logs = []
    try:
        for worker in workers:
            output, _ = worker.communicate(timeout=120)
            logs.append(output)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for rank, (worker, output) in enumerate(zip(workers, logs, strict=True)):
        assert worker.returncode == 0, f"rank {rank} failed:\n{output}"
    return out


def test_rank_zero_records_the_norms_of_the_all_reduced_gradients(ddp_run):
    seen = [np.load(ddp_run / f"seen{rank}.npz") for rank in (0, 1)]
    # The gradients DDP left are the same on both ranks: the all-reduced ones.
    np.testing.assert_allclose(seen[0]["grad_norms"], seen[1]["grad_norms"], rtol=1e-6)
    (history,) = mv.TrainingMonitor.load(ddp_run / "rank0.sqlite").histories
    sampled = list(range(0, STEPS, EVERY))
    assert [s.step for s in history.samples] == sampled
    for sample in history.samples:
        expected = seen[0]["grad_norms"][sample.step]  # [linear layer, weight / bias]
        # Monitored layers: 0 (Linear), 1 (ReLU), 2 (Linear); columns 2, 3 are the gradients.
        np.testing.assert_allclose(sample.norms[[0, 2]][:, 2:], expected, rtol=1e-5)
        assert np.isnan(sample.norms[1]).all()


def test_rank_zero_combines_both_ranks_activations_and_losses(ddp_run):
    seen = [np.load(ddp_run / f"seen{rank}.npz") for rank in (0, 1)]
    (history,) = mv.TrainingMonitor.load(ddp_run / "rank0.sqlite").histories
    assert history.steps == list(range(STEPS))
    np.testing.assert_allclose(
        history.losses, (seen[0]["losses"] + seen[1]["losses"]) / 2, rtol=1e-6
    )
    np.testing.assert_array_equal(history.metrics["batch"], [7.0] * STEPS)  # (6 + 8) / 2
    late = history.metrics["late"]
    assert late[3] == 1.5 and np.isnan([v for i, v in enumerate(late) if i != 3]).all()
    for sample in history.samples:
        step = sample.step
        count = seen[0]["counts"][step] + seen[1]["counts"][step]
        total = seen[0]["sums"][step] + seen[1]["sums"][step]  # [layer, (sum, sum of squares)]
        np.testing.assert_array_equal(sample.activations[:, 0], count)  # both ranks' batches
        mean = total[:, 0] / count
        std = np.sqrt(total[:, 1] / count - mean**2)
        np.testing.assert_allclose(sample.activations[:, 1], mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(sample.activations[:, 2], std, rtol=1e-4, atol=1e-7)
        # A ReLU unit is dead when it fired for no sample of either rank.
        peaks = np.maximum(seen[0]["peaks"][step], seen[1]["peaks"][step])
        assert sample.activations[1, 3] == pytest.approx(np.mean(peaks <= 0))


def test_only_rank_zero_keeps_a_history_and_writes_a_log(ddp_run):
    seen = [np.load(ddp_run / f"seen{rank}.npz") for rank in (0, 1)]
    assert (ddp_run / "rank0.sqlite").exists()
    assert not list(ddp_run.glob("rank1.sqlite*"))
    assert list(seen[1]["history_steps"]) == [] and list(seen[1]["history_samples"]) == []
    assert list(seen[0]["history_steps"]) == list(range(STEPS))
    assert list(seen[0]["history_samples"]) == list(range(0, STEPS, EVERY))


class DoublingReducer(Reducer):
    """Stands in for two ranks that measured the same: sums double, maxima stay."""

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor * 2

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.clone()


def test_steps_without_a_loss_raise_no_loss_alert_in_distributed_training(monkeypatch):
    monkeypatch.setattr(training, "distributed_rank", lambda: (0, 2))
    monkeypatch.setattr(training, "RankReducer", DoublingReducer)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    recorder = training.Recorder(model, every=2)
    for step in range(4):
        model(torch.randn(5, 3)).sum().backward()
        recorder.record(None if step != 2 else float("nan"), **({"acc": 0.5} if step == 1 else {}))
    history = recorder.history
    assert history.steps == [0, 1, 2]  # step 3 waits for the next sample
    assert [(a.step, a.kind) for a in history.alerts] == [(2, "loss")]  # only the NaN loss
    assert history.metrics["acc"][1] == 0.5 and np.isnan(history.metrics["acc"][0])
    assert history.samples[0].activations[0, 0] == 2 * 5 * 4  # "both ranks" counted
    recorder.close()
