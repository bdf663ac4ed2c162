"""Training steps with mv.TrainingMonitor vs unmonitored steps of the same model, in one run
(issue 6: <= 1.05x with default settings, <= 100 comm messages a second), beside TensorBoard's
SummaryWriter.add_histogram of every parameter and gradient every 10 steps.

Each candidate trains its own copy of the model (same initial weights, same batches, its own
optimizer), and every copy alternates between turns with its candidate attached and turns without:
a pair of turns, back to back in a random order, gives one ratio, and the figure is the median
ratio over the pairs. The same model, the same memory, a few hundred milliseconds apart: neither
where a copy's tensors happen to lie nor the machine's load from one second to the next (on a
shared machine, turns of the same candidate vary by 10 % or more) enters the ratio. Between its
turns, a monitor is detached: its hooks removed, its pending deadline cancelled (so that it
publishes nothing during another turn), and attached again, untimed, before its next turn.

Steps are timed in blocks of ``every``, so that every block holds exactly one sampled step. A
turn is ``--stretch`` blocks (about half a second on the small models): the monitor publishes at
most ten times a second of wall time, and turns long enough for several publishes give it the
rate per step of a real run. A copy with nothing attached in either turn of its pairs
(``plain_b``) shows the noise of the method, and each median comes with a 95% bootstrap interval
over its pairs. ``--clock cpu`` times the steps by the process's CPU
time instead of the wall clock: a candidate's work in other threads (TensorBoard's writer, a
publish from the deadline thread) then counts, even where a spare core hides it from the wall clock.

TensorBoard is not a dependency: install it outside the repository, for example
``pip install --no-deps --target DIR tensorboard protobuf absl-py``, and pass ``--tensorboard-path
DIR`` (or set ``$MV_TENSORBOARD_PATH``); the TensorBoard rows are skipped, with a message, when
``torch.utils.tensorboard`` cannot be imported.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
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
from common import ResNet18, save
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.widgets.deadlines import DEADLINES

EVERY = 10
"""The monitor's sampling period (its default; ``--every`` sets another), the length of a timed
block, and TensorBoard's histogram period here."""

clock: Callable[[], float] = time.perf_counter
"""What a step's time is read from: wall time, or with ``--clock cpu`` the CPU time of the whole
process (``time.process_time``: every thread's, a publish or TensorBoard's writer thread
included; on a shared virtual machine, without the time the host gives to others)."""


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
    """One copy of a task's model trained in blocks of ``EVERY`` steps, with its candidate
    attached (``after(step, loss)`` after each optimizer step; ``attach()`` and ``detach()``
    around such a turn, untimed) or not. Step times are kept by block position and by kind of
    turn."""

    def __init__(
        self,
        task: Task,
        after: Callable[[int, torch.Tensor], None] | None = None,
        attach: Callable[[], None] | None = None,
        detach: Callable[[], None] | None = None,
    ) -> None:
        self.model = copy.deepcopy(task.model)
        self.optimizer = task.optimizer(self.model)
        self.batches = task.batches
        self.after, self.attach, self.detach = after, attach, detach
        self.loss_function = nn.CrossEntropyLoss()
        self.step = 0
        self.by_position: dict[bool, list[list[float]]] = {
            kind: [[] for _ in range(EVERY)] for kind in (True, False)
        }

    def turn(self, blocks: int, attached: bool) -> float:
        """Seconds for ``blocks`` blocks in a row, with the candidate attached or not."""
        if attached and self.attach is not None:
            self.attach()
        after = self.after if attached else None
        start = clock()
        for _ in range(blocks):
            self.block(after, self.by_position[attached])
        seconds = clock() - start
        if attached and self.detach is not None:
            self.detach()
        return seconds

    def block(
        self, after: Callable[[int, torch.Tensor], None] | None, by_position: list[list[float]]
    ) -> None:
        for position in range(EVERY):
            x, y = self.batches[self.step % len(self.batches)]
            start = clock()
            self.optimizer.zero_grad()
            loss = self.loss_function(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            if after is not None:
                after(self.step, loss)
            by_position[position].append(clock() - start)
            self.step += 1


def paired(trainers: dict[str, Trainer], pairs: int, warmup: int, blocks: int) -> dict:
    """Per trainer, the ratio attached / not attached of each pair of turns after warm-up.

    Every round runs each trainer's pair, the trainers in a shuffled order and the two turns of
    a pair in a random order (fixed seed)."""
    shuffler = random.Random(0)
    ratios: dict[str, list[float]] = {name: [] for name in trainers}
    order = list(trainers)
    for round_ in range(warmup + pairs):
        shuffler.shuffle(order)
        for name in order:
            first = shuffler.random() < 0.5
            seconds = {kind: trainers[name].turn(blocks, kind) for kind in (first, not first)}
            if round_ >= warmup:
                ratios[name].append(seconds[True] / seconds[False])
    return ratios


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


def as_in_a_kernel(make: Callable[[], Any]) -> tuple[Any, asyncio.AbstractEventLoop]:
    """``make()`` called inside a running event loop, which then stays stopped: as in a kernel,
    whose loop waits while a training cell runs in the main thread. A monitor made so publishes
    in the training loop's own steps, and queues its trailing publish on that loop, never in
    the deadline thread (which it does without a loop: a script). Returns it and the loop."""
    loop = asyncio.new_event_loop()

    async def made() -> Any:
        return make()

    return loop.run_until_complete(made()), loop


def message_rate(model: nn.Module, batches: list, optimizer: Any, seconds: float) -> dict:
    """Train at full speed under a monitor for ``seconds``; messages sent per second."""
    with MessageCounter() as counter:
        monitor, loop = as_in_a_kernel(lambda: mv.TrainingMonitor(model))
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
        # The cell ends: the loop runs, and with it the trailing publish of the last steps.
        loop.run_until_complete(asyncio.sleep(1.0))
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

    def monitored(log: str | None) -> Trainer:
        trainer = Trainer(task)
        monitor, _ = as_in_a_kernel(lambda: mv.TrainingMonitor(trainer.model, every=EVERY, log=log))
        monitors.append(monitor)
        collector = monitor._recorder.collector

        def detach() -> None:
            collector.disarm()  # the hooks for the next sampled step, and nothing pending
            DEADLINES.cancel(monitor)

        trainer.after = lambda step, loss: monitor.step(loss=loss)
        trainer.attach, trainer.detach = collector.arm, detach
        detach()
        return trainer

    trainers: dict[str, Trainer] = {"plain_b": Trainer(task)}
    trainers["monitor"] = monitored(None)
    trainers["monitor_log"] = monitored(str(Path(log_dir) / f"run{len(monitors)}.sqlite"))
    writer = tensorboard_writer(tensorboard, str(Path(log_dir) / "tb"))
    if writer is not None:
        trainer = Trainer(task)
        trainer.after = tensorboard_after(writer, trainer.model)
        trainers["tensorboard"] = trainer
    with MessageCounter():  # so that the monitors' sends cost what counting costs, as in a kernel
        ratios = paired(trainers, max(1, task.reps // stretch), warmup, stretch)
    for monitor in monitors:
        monitor.close()
    if writer is not None:
        writer.close()
    skip = warmup * stretch  # blocks of warm-up
    result: dict[str, Any] = {
        "model": task.label,
        "pairs": len(ratios["plain_b"]),
        "blocks_per_turn": stretch,
        "candidates": {},
    }
    plain_steps = []
    for name, trainer in trainers.items():
        alone = [statistics.median(ts[skip:]) for ts in trainer.by_position[False]]
        with_it = [statistics.median(ts[skip:]) for ts in trainer.by_position[True]]
        plain_steps.append(statistics.median(alone))
        values = sorted(ratios[name])
        quarter = len(values) // 4
        low, high = median_interval(values)
        result["candidates"][name] = {
            "ratio": statistics.median(values),
            "ratio_q1": values[quarter],
            "ratio_q3": values[-quarter - 1],
            "ratio_ci95": [low, high],
            "ratio_by_position": sum(with_it) / sum(alone),
            "plain_step_s": statistics.median(alone),
            "sampled_step_s": with_it[0],
            "arming_step_s": with_it[-1],
            "ratio_sampled": with_it[0] / alone[0],
            "ratio_arming": with_it[-1] / alone[-1],
            "ratio_other": sum(with_it[1:-1]) / sum(alone[1:-1]),
        }
    result["plain_step_s"] = statistics.median(plain_steps)
    return result


def median_interval(values: list[float], resamples: int = 4000) -> tuple[float, float]:
    """A 95% bootstrap interval of the median of ``values`` (fixed seed): how far the median of
    as many pairs, on the same machine, could be from this one by chance."""
    draw = random.Random(1)
    medians = sorted(
        statistics.median(draw.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def report(result: dict) -> None:
    print(result["model"])
    print(
        f"  unmonitored step {result['plain_step_s'] * 1e3:.2f} ms (median); "
        f"{result['pairs']} pairs of turns of {result['blocks_per_turn']} blocks"
    )
    print(
        f"  {'candidate':13} {'ratio':>6} {'(IQR)':>13} {'by pos':>6}"
        f" {'sampled step':>19} {'arming step':>18} {f'steps 1-{EVERY - 2}':>9}"
    )
    for name, c in result["candidates"].items():
        print(
            f"  {name:13} {c['ratio']:6.3f} ({c['ratio_q1']:5.3f}-{c['ratio_q3']:5.3f})"
            f" {c['ratio_by_position']:6.3f} {c['sampled_step_s'] * 1e3:9.2f}ms"
            f" {c['ratio_sampled']:6.2f}x {c['arming_step_s'] * 1e3:8.2f}ms"
            f" {c['ratio_arming']:6.2f}x {c['ratio_other']:8.3f}x"
        )
    intervals = ", ".join(
        f"{name} {c['ratio_ci95'][0]:.3f}-{c['ratio_ci95'][1]:.3f}"
        for name, c in result["candidates"].items()
    )
    print(f"  95% interval of each median ratio (bootstrap over the pairs): {intervals}")


def main() -> dict:
    global clock, EVERY
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=150, help="blocks, digits CNN and MLP")
    parser.add_argument("--resnet-reps", type=int, default=10, help="blocks, ResNet-18")
    parser.add_argument("--resnet-batch", type=int, default=4)
    parser.add_argument("--resnet-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--every",
        type=int,
        default=EVERY,
        help="the monitor's sampling period (and the block length, and TensorBoard's period)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time steps by the wall clock, or by the process's CPU time (all its threads)",
    )
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
    EVERY = args.every
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    chosen = args.only or ["digits", "mlp", "resnet", "messages"]
    results: dict[str, Any] = {"threads": args.threads, "every": EVERY, "clock": args.clock}
    print(
        f"{args.threads} torch thread(s); steps timed by the {args.clock} clock; "
        f"a sample every {EVERY} steps"
    )
    with tempfile.TemporaryDirectory() as log_dir:
        tasks = {
            "digits": lambda: digits_task(args.reps),
            "mlp": lambda: mlp_task(args.reps),
            "resnet": lambda: resnet_task(args.resnet_reps, args.resnet_batch, args.resnet_size),
        }
        for key, make in tasks.items():
            if key in chosen:
                task = make()
                warmup = 2 if key != "resnet" else 1
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
