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
import copy
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from common import save
from torch import nn

import modelviz_widgets as mv

EVERY = 10


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


class Copy:
    """One copy of the digits CNN and its optimizer, trained in blocks with a pause after the
    first step of each block; step times kept by position in the block."""

    def __init__(self, model: nn.Module, batches: list, kind: str, seconds: float) -> None:
        self.model = copy.deepcopy(model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.batches, self.kind, self.seconds = batches, kind, seconds
        self.loss_function = nn.CrossEntropyLoss()
        self.step = 0
        self.by_position: dict[bool, list[list[float]]] = {
            paused: [[] for _ in range(EVERY)] for paused in (True, False)
        }

    def blocks(self, count: int, keep: bool, paused: bool) -> None:
        pause = PAUSES[self.kind]
        times = self.by_position[paused]
        for _ in range(count):
            for position in range(EVERY):
                x, y = self.batches[self.step % len(self.batches)]
                start = time.perf_counter()
                self.optimizer.zero_grad()
                loss = self.loss_function(self.model(x), y)
                loss.backward()
                self.optimizer.step()
                if keep:
                    times[position].append(time.perf_counter() - start)
                if position == 0 and paused:
                    pause(self.seconds)
                self.step += 1

    def summary(self) -> dict:
        extra = {}
        for paused, times in self.by_position.items():
            medians = [statistics.median(each) for each in times]
            usual = statistics.median(medians[5:])  # the last steps of a block
            extra[paused] = sum(m - usual for m in medians[1:5])  # the four after the first
        cost = extra[True] - extra[False]
        return {
            "kind": self.kind,
            "pause_s": self.seconds,
            "step_s": statistics.median(t for each in self.by_position[False] for t in each),
            "extra_paused_s": extra[True],
            "extra_unpaused_s": extra[False],
            "cost_s": cost,
            "cost_per_pause_second": cost / self.seconds,
        }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--milliseconds", type=float, nargs="*", default=[1.0, 2.0])
    parser.add_argument("--kinds", choices=sorted(PAUSES), nargs="*", default=sorted(PAUSES))
    parser.add_argument("--rounds", type=int, default=60, help="pairs of turns of each copy")
    parser.add_argument("--blocks", type=int, default=10, help="blocks of 10 steps a turn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images, labels = mv.demo.load_digits("train")
    order = torch.randperm(len(labels))
    batches = [
        (images[order[i : i + 64]], labels[order[i : i + 64]])
        for i in range(0, len(order) - 63, 64)
    ]
    model = mv.demo.digits_cnn().train()
    copies = [
        Copy(model, batches, kind, ms / 1e3) for kind in args.kinds for ms in args.milliseconds
    ]
    shuffler = random.Random(0)
    for round_ in range(args.rounds + 2):  # two rounds of warm-up
        shuffler.shuffle(copies)
        for each in copies:
            first = shuffler.random() < 0.5
            for paused in (first, not first):
                each.blocks(args.blocks, keep=round_ >= 2, paused=paused)
    rows = sorted((c.summary() for c in copies), key=lambda r: (r["kind"], r["pause_s"]))
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
