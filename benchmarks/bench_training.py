"""Training steps with mv.TrainingMonitor vs unmonitored steps of the same model, in one run
(issue 6: <= 1.05x with default settings, <= 100 comm messages a second), beside TensorBoard's
SummaryWriter.add_histogram of every parameter and gradient every 10 steps.

Each candidate trains its own copy of the model (same initial weights, same batches, its own
optimizer): the monitor's hooks and kept weights must not touch the others. Steps are timed in
blocks of ``every``, so that every block holds exactly one sampled step. A candidate trains for a
turn of ``--stretch`` blocks in a row (about half a second on the small models), and the turns of
all candidates are interleaved in a shuffled order (common.interleaved). Turns, not single blocks:
the monitor publishes at most ten times a second of wall time, and a block of 25 ms between three
other candidates' blocks would see a publish nearly every block, four times as often per step as
in a real run, where the loop trains all the time. Two unmonitored copies are timed, the second as
the noise floor of comparing two copies.

TensorBoard is not a dependency: install it outside the repository, for example
``pip install --no-deps --target DIR tensorboard protobuf absl-py``, and pass ``--tensorboard-path
DIR`` (or set ``$MV_TENSORBOARD_PATH``); the TensorBoard rows are skipped, with a message, when
``torch.utils.tensorboard`` cannot be imported.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets
import torch
from common import ResNet18, interleaved, save
from torch import nn

import modelviz_widgets as mv

EVERY = 10
"""The monitor's default sampling period, and TensorBoard's histogram period here."""


# -- models and their training steps --


class Task:
    """A model, its optimizer factory and a cycle of batches."""

    def __init__(
        self,
        label: str,
        model: nn.Module,
        batches: list[tuple[torch.Tensor, torch.Tensor]],
        optimizer: Callable[[nn.Module], torch.optim.Optimizer],
        reps: int,
    ) -> None:
        self.label, self.model, self.batches, self.optimizer, self.reps = (
            label,
            model,
            batches,
            optimizer,
            reps,
        )


def digits_task(reps: int) -> Task:
    torch.manual_seed(0)
    images, labels = mv.demo.load_digits("train")
    order = torch.randperm(len(labels))
    batches = [
        (images[order[i : i + 64]], labels[order[i : i + 64]])
        for i in range(0, len(order) - 63, 64)
    ]
    model = mv.demo.digits_cnn().train()
    return Task(
        "digits CNN (mv.demo.digits_cnn, 9.8k parameters), batch 64x1x8x8, Adam lr 1e-2",
        model,
        batches,
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
        reps,
    )


def mlp_task(reps: int) -> Task:
    torch.manual_seed(0)
    images, labels = mv.demo.load_digits("train")
    flat = images.reshape(len(labels), -1)
    batches = [(flat[i : i + 64], labels[i : i + 64]) for i in range(0, len(labels) - 63, 64)]
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    ).train()
    return Task(
        "MLP 64-128-64-10 with ReLUs (17.2k parameters), batch 64 flattened digits, Adam lr 1e-3",
        model,
        batches,
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
        reps,
    )


def resnet_task(reps: int, batch: int, size: int) -> Task:
    torch.manual_seed(0)
    model = ResNet18().train()
    batches = [
        (torch.randn(batch, 3, size, size), torch.randint(0, 1000, (batch,))) for _ in range(4)
    ]
    return Task(
        f"ResNet-18 layout (benchmarks/common.py, 11.7M parameters), batch {batch}x3x{size}x{size}"
        ", SGD lr 0.01 momentum 0.9",
        model,
        batches,
        lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
        reps,
    )


class Trainer:
    """One copy of a task's model trained in blocks of ``EVERY`` steps; ``after(step, loss)`` is
    what the candidate does after each optimizer step. Step times are kept by block position."""

    def __init__(self, task: Task, after: Callable[[int, torch.Tensor], None] | None) -> None:
        self.model = copy.deepcopy(task.model)
        self.optimizer = task.optimizer(self.model)
        self.batches = task.batches
        self.after = after
        self.loss_function = nn.CrossEntropyLoss()
        self.step = 0
        self.by_position: list[list[float]] = [[] for _ in range(EVERY)]

    def blocks(self, count: int) -> None:
        """``count`` blocks in a row: a turn of this candidate (see ``--stretch``)."""
        for _ in range(count):
            self.block()

    def block(self) -> None:
        for position in range(EVERY):
            x, y = self.batches[self.step % len(self.batches)]
            start = time.perf_counter()
            self.optimizer.zero_grad()
            loss = self.loss_function(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            if self.after is not None:
                self.after(self.step, loss)
            self.by_position[position].append(time.perf_counter() - start)
            self.step += 1


def tensorboard_writer(path: str | None, directory: str) -> Any:
    """A SummaryWriter, or None (with a message) when TensorBoard cannot be imported."""
    if path:
        sys.path.insert(0, path)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        print(f"TensorBoard rows skipped: cannot import SummaryWriter ({error})")
        return None
    return SummaryWriter(directory)


def tensorboard_after(writer: Any, model: nn.Module) -> Callable[[int, torch.Tensor], None]:
    named = list(model.named_parameters())

    def after(step: int, loss: torch.Tensor) -> None:
        writer.add_scalar("loss", loss.item(), step)
        if step % EVERY == 0:
            for name, parameter in named:
                writer.add_histogram(name, parameter, step)
                if parameter.grad is not None:
                    writer.add_histogram(f"{name}.grad", parameter.grad, step)

    return after


# -- messages --


class MessageCounter:
    """Counts every message any widget sends (ipywidgets.Widget._send: state updates, custom
    messages; the monitor's core, its bqplot lines, axes and figure alike)."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str, str, int]] = []  # time, widget, kind, bytes
        self._lock = threading.Lock()
        self._original = ipywidgets.Widget._send

    def __enter__(self) -> MessageCounter:
        original, counter = self._original, self

        def counted(widget: Any, msg: dict, buffers: Any = None) -> None:
            size = sum(memoryview(b).nbytes for b in buffers or [])
            with counter._lock:
                counter.messages.append(
                    (time.monotonic(), type(widget).__name__, msg.get("method", "?"), size)
                )
            original(widget, msg, buffers)

        ipywidgets.Widget._send = counted
        return self

    def __exit__(self, *exc: Any) -> None:
        ipywidgets.Widget._send = self._original


def message_rate(model: nn.Module, batches: list, optimizer: Any, seconds: float) -> dict:
    """Train at full speed under a monitor for ``seconds``; messages sent per second."""
    with MessageCounter() as counter:
        monitor = mv.TrainingMonitor(model)
        opened = len(counter.messages)
        loss_function = nn.CrossEntropyLoss()
        steps = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            x, y = batches[steps % len(batches)]
            optimizer.zero_grad()
            loss = loss_function(model(x), y)
            loss.backward()
            optimizer.step()
            monitor.step(loss=loss)
            steps += 1
        elapsed = time.monotonic() - start
        time.sleep(1.0)  # the trailing publish of the last steps (timer)
        during = [m for m in counter.messages[opened:] if m[0] <= start + elapsed]
        trailing = len(counter.messages) - opened - len(during)
        # The busiest whole second of the loop.
        seconds_of = [int(m[0] - start) for m in during]
        peak = max((seconds_of.count(s) for s in set(seconds_of)), default=0)
        kinds: dict[str, int] = {}
        for _, widget, method, _ in during:
            kinds[f"{widget}.{method}"] = kinds.get(f"{widget}.{method}", 0) + 1
        monitor.close()
    return {
        "steps": steps,
        "seconds": elapsed,
        "steps_per_s": steps / elapsed,
        "messages_on_open": opened,
        "messages": len(during),
        "messages_per_s": len(during) / elapsed,
        "busiest_second": peak,
        "trailing_after_loop": trailing,
        "bytes_per_s": sum(m[3] for m in during) / elapsed,
        "by_kind": kinds,
    }


# -- the timing run --


def time_task(
    task: Task, tensorboard: str | None, log_dir: str, warmup: int, stretch: int = 1
) -> dict:
    monitors: list[Any] = []
    trainers: dict[str, Trainer] = {"plain": Trainer(task, None), "plain_b": Trainer(task, None)}

    def monitored(log: str | None) -> Trainer:
        trainer = Trainer(task, None)
        monitor = mv.TrainingMonitor(trainer.model, log=log)
        monitors.append(monitor)
        trainer.after = lambda step, loss: monitor.step(loss=loss)
        return trainer

    trainers["monitor"] = monitored(None)
    trainers["monitor_log"] = monitored(str(Path(log_dir) / f"run{len(monitors)}.sqlite"))
    writer = tensorboard_writer(tensorboard, str(Path(log_dir) / "tb"))
    if writer is not None:
        trainer = Trainer(task, None)
        trainer.after = tensorboard_after(writer, trainer.model)
        trainers["tensorboard"] = trainer
    with MessageCounter():  # so that the monitors' sends cost what counting costs, as in a kernel
        turns = {n: functools.partial(t.blocks, stretch) for n, t in trainers.items()}
        times = interleaved(turns, max(1, task.reps // stretch), warmup)
    warmup *= stretch  # in blocks from here on
    for monitor in monitors:
        monitor.close()
    if writer is not None:
        writer.close()
    base = times["plain"]["median_s"]
    result: dict[str, Any] = {
        "model": task.label,
        "blocks": task.reps,
        "blocks_per_turn": stretch,
        "candidates": {},
    }
    plain_steps = [t for times_ in trainers["plain"].by_position for t in times_[warmup:]]
    plain_step = statistics.median(plain_steps)
    plain_amortized = amortized(trainers["plain"], warmup)
    for name, trainer in trainers.items():
        positions = [statistics.median(ts[warmup:]) for ts in trainer.by_position]
        middle = statistics.median(t for ts in trainer.by_position[1:-1] for t in ts[warmup:])
        result["candidates"][name] = {
            "block_median_s": times[name]["median_s"],
            "block_p95_s": times[name]["p95_s"],
            "ratio": times[name]["median_s"] / base,
            "ratio_amortized": amortized(trainer, warmup) / plain_amortized,
            "sampled_step_s": positions[0],
            "arming_step_s": positions[-1],
            "other_step_s": middle,
            "ratio_sampled": positions[0] / plain_step,
            "ratio_arming": positions[-1] / plain_step,
            "ratio_other": middle / plain_step,
        }
    result["plain_step_s"] = plain_step
    return result


def amortized(trainer: Trainer, warmup: int) -> float:
    """Seconds per step over a period from the medians of each position in the block (the
    sampled step, the arming step, the others): robust to a block hit by another process."""
    return sum(statistics.median(ts[warmup:]) for ts in trainer.by_position) / EVERY


def report(result: dict) -> None:
    print(result["model"])
    print(f"  unmonitored step {result['plain_step_s'] * 1e3:.2f} ms (median)")
    print(
        f"  {'candidate':13} {'block':>10} {'ratio':>6} {'by pos':>6}"
        f" {'step 0 (sampled)':>17} {'step 9 (arming)':>16} {'steps 1-8':>15}"
    )
    for name, c in result["candidates"].items():
        print(
            f"  {name:13} {c['block_median_s'] * 1e3:8.2f}ms {c['ratio']:6.3f} "
            f"{c['ratio_amortized']:6.3f} {c['sampled_step_s'] * 1e3:8.2f}ms "
            f"{c['ratio_sampled']:6.2f}x"
            f" {c['arming_step_s'] * 1e3:7.2f}ms {c['ratio_arming']:6.2f}x"
            f" {c['other_step_s'] * 1e3:6.2f}ms {c['ratio_other']:6.3f}x"
        )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=150, help="blocks, digits CNN and MLP")
    parser.add_argument("--resnet-reps", type=int, default=10, help="blocks, ResNet-18")
    parser.add_argument("--resnet-batch", type=int, default=4)
    parser.add_argument("--resnet-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--stretch",
        type=int,
        default=20,
        help="blocks a candidate trains in a row, digits CNN and MLP (the ResNet: 1)",
    )
    parser.add_argument("--message-seconds", type=float, default=5.0)
    parser.add_argument("--tensorboard-path", default=os.environ.get("MV_TENSORBOARD_PATH"))
    parser.add_argument("--only", choices=["digits", "mlp", "resnet", "messages"], nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = args.only or ["digits", "mlp", "resnet", "messages"]
    results: dict[str, Any] = {"threads": args.threads, "every": EVERY}
    with tempfile.TemporaryDirectory() as log_dir:
        tasks = {
            "digits": lambda: digits_task(args.reps),
            "mlp": lambda: mlp_task(args.reps),
            "resnet": lambda: resnet_task(args.resnet_reps, args.resnet_batch, args.resnet_size),
        }
        for key, make in tasks.items():
            if key in chosen:
                task = make()
                warmup = 5 if key != "resnet" else 1
                stretch = args.stretch if key != "resnet" else 1
                results[key] = time_task(task, args.tensorboard_path, log_dir, warmup, stretch)
                report(results[key])
    if "messages" in chosen:
        results["messages"] = messages(args.message_seconds)
    save("training", results)
    return results


def messages(seconds: float) -> dict:
    digits = digits_task(0)
    model = copy.deepcopy(digits.model)
    out = {"digits": message_rate(model, digits.batches, digits.optimizer(model), seconds)}
    torch.manual_seed(0)
    tiny = nn.Sequential(nn.Linear(4, 2))
    batch = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
    out["tiny"] = message_rate(tiny, batch, torch.optim.SGD(tiny.parameters(), lr=0.1), seconds)
    for name, rate in out.items():
        print(
            f"messages, {name}: {rate['steps_per_s']:.0f} steps/s, {rate['messages_per_s']:.1f} "
            f"messages/s (busiest second {rate['busiest_second']}; budget <= 100), "
            f"{rate['bytes_per_s'] / 1e3:.1f} kB/s; {rate['by_kind']}"
        )
    return out


if __name__ == "__main__":
    main()
