"""What any work between two training steps costs the steps after it, on this machine.

The digits CNN of ``bench_training.py`` trains unmonitored (one torch thread), in blocks of 10
steps; after the first step of a block, a pause of a given length runs: a Python loop that counts
(no memory touched, no system call), ``time.sleep``, or a numpy pass over 200k values (what a
sampled step's reductions touch). The pause itself is not timed; the figure is how much longer
the next four steps take than the block's last steps, beyond what they take without a pause, as a
fraction of the pause's length. A monitor's sample is such a pause: whatever this fraction is, the
monitor's work costs the training that much again on top of its own time.

Every pause setting trains its own copy of the model, in turns with its pause and turns without,
back to back in a random order: the cost is what the steps after the pause take in the first
beyond what the same steps of the same copy take in the second (two copies of one model differ by
more than that). The copies take turns in a shuffled order (fixed seed).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_training import EVERY, Trainer, digits_task
from common import save


def python_pause(seconds: float) -> None:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        for _ in range(200):  # mostly counting: perf_counter is called every 200 turns
            count += 1


_VALUES = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)


def numpy_pause(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        float(np.dot(_VALUES, _VALUES))


PAUSES: dict[str, Callable[[float], None]] = {
    "python": python_pause,
    "sleep": time.sleep,
    "numpy": numpy_pause,
}


def pausing(kind: str, seconds: float) -> Callable[[int, torch.Tensor], None]:
    """What a :class:`Trainer` calls after each step: the pause, after the first of a block."""
    pause = PAUSES[kind]

    def after(step: int, loss: torch.Tensor) -> None:
        if step % EVERY == 0:
            pause(seconds)

    return after


def summary(trainer: Trainer, kind: str, seconds: float, skip: int) -> dict:
    """The extra time of the four steps after a block's first (timed with the pause: left out),
    over the block's last steps, in turns with the pause and without; ``skip`` blocks of warm-up."""
    extra = {}
    for paused, times in trainer.by_position.items():
        medians = [statistics.median(each[skip:]) for each in times]
        usual = statistics.median(medians[5:])  # the last steps of a block
        extra[paused] = sum(m - usual for m in medians[1:5])
    cost = extra[True] - extra[False]
    return {
        "kind": kind,
        "pause_s": seconds,
        "step_s": statistics.median(t for each in trainer.by_position[False] for t in each[skip:]),
        "extra_paused_s": extra[True],
        "extra_unpaused_s": extra[False],
        "cost_s": cost,
        "cost_per_pause_second": cost / seconds,
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--milliseconds", type=float, nargs="*", default=[1.0, 2.0])
    parser.add_argument("--kinds", choices=sorted(PAUSES), nargs="*", default=sorted(PAUSES))
    parser.add_argument("--rounds", type=int, default=60, help="pairs of turns of each copy")
    parser.add_argument("--blocks", type=int, default=10, help="blocks of 10 steps a turn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = digits_task(0)
    settings = [(kind, ms / 1e3) for kind in args.kinds for ms in args.milliseconds]
    trainers = [Trainer(task, after=pausing(kind, seconds)) for kind, seconds in settings]
    order = list(range(len(settings)))
    shuffler = random.Random(0)
    for _ in range(args.rounds + 2):  # two rounds of warm-up
        shuffler.shuffle(order)
        for index in order:
            first = shuffler.random() < 0.5
            for paused in (first, not first):
                trainers[index].turn(args.blocks, paused)
    skip = 2 * args.blocks
    rows = [
        summary(trainer, kind, seconds, skip)
        for trainer, (kind, seconds) in zip(trainers, settings, strict=True)
    ]
    print(f"digits CNN, {args.rounds} pairs of turns of {args.blocks} blocks per setting")
    print(
        f"  {'pause':>14} {'step':>8}   next 4 steps, extra: {'paused':>8} {'not':>8}"
        f"   cost {'per ms':>7}"
    )
    for row in rows:
        name = f"{row['kind']} {row['pause_s'] * 1e3:.1f} ms"
        print(
            f"  {name:>14} {row['step_s'] * 1e3:6.2f}ms"
            f" {'':20} {row['extra_paused_s'] * 1e3:6.3f}ms {row['extra_unpaused_s'] * 1e3:6.3f}ms"
            f" {row['cost_s'] * 1e3:6.3f}ms {row['cost_per_pause_second']:7.2f}"
        )
    results = {"every": EVERY, "rows": rows}
    save("pause", results)
    return results


if __name__ == "__main__":
    main()
