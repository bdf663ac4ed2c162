"""A durable record of training runs in SQLite (stdlib sqlite3, write-ahead log).

Every recorded step is committed before :meth:`RunLog.record` returns, so a process that dies,
even by SIGKILL, leaves every step recorded so far readable. One file can hold several runs (a
second monitor on the same path appends a run); :func:`read_runs` reads them back.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .training_stats import BINS, StepStats

SCHEMA = """
create table if not exists runs (
  id integer primary key, name text not null, started real not null, finished real,
  every integer not null, layers text not null, bins integer not null
);
create table if not exists steps (
  run integer not null, step integer not null, time real not null, loss real,
  metrics text not null, primary key (run, step)
);
create table if not exists samples (
  run integer not null, step integer not null, data blob not null, primary key (run, step)
);
create table if not exists alerts (
  run integer not null, step integer not null, layer text not null, kind text not null,
  message text not null
);
"""


def sample_width(layers: int) -> int:
    """Values per sampled step in a packed row (see :func:`pack`)."""
    return layers * (4 * BINS + 4 + 4 + 4 + 2 + 5)


def pack(stats: StepStats) -> np.ndarray:
    """A sampled step as one float64 row: counts, scales, NaN counts, norms, update norms,
    activation statistics, each C-ordered per layer."""
    return np.concatenate(
        [
            stats.counts.reshape(-1).astype(np.float64),
            stats.scales.reshape(-1),
            stats.nan_counts.reshape(-1).astype(np.float64),
            stats.norms.reshape(-1),
            stats.update_norms.reshape(-1),
            stats.activations.reshape(-1),
        ]
    )


def unpack(step: int, row: np.ndarray, layers: int) -> StepStats:
    """The inverse of :func:`pack`."""
    sizes = [4 * BINS, 4, 4, 4, 2, 5]
    parts = np.split(row, np.cumsum([size * layers for size in sizes])[:-1])
    counts, scales, nans, norms, updates, activations = parts
    return StepStats(
        step=step,
        counts=counts.reshape(layers, 4, BINS).astype(np.int64),
        scales=scales.reshape(layers, 4),
        nan_counts=nans.reshape(layers, 4).astype(np.int64),
        norms=norms.reshape(layers, 4),
        update_norms=updates.reshape(layers, 2),
        activations=activations.reshape(layers, 5),
    )


@dataclass
class Alert:
    """Something worth a look: a vanishing or exploding gradient, dead units, a NaN."""

    step: int
    layer: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "layer": self.layer, "kind": self.kind, "message": self.message}


@dataclass
class RunHistory:
    """Everything recorded in one run, in memory."""

    name: str
    every: int
    layers: list[dict[str, Any]]
    steps: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    samples: list[StepStats] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    finished: bool = False

    def add_step(self, step: int, when: float, loss: float, metrics: dict[str, float]) -> None:
        count = len(self.steps)
        self.steps.append(step)
        self.times.append(when)
        self.losses.append(loss)
        for name in metrics:
            if name not in self.metrics:  # a new metric: NaN on the steps before it
                self.metrics[name] = [float("nan")] * count
        for name, values in self.metrics.items():
            values.append(metrics.get(name, float("nan")))

    def step_table(self, start: int = 0) -> np.ndarray:
        """``[steps, 3 + metrics]``: step, time, loss, then each metric (NaN when not given)."""
        columns: list[list[float]] = [
            [float(s) for s in self.steps[start:]],
            self.times[start:],
            self.losses[start:],
        ]
        columns += [values[start:] for values in self.metrics.values()]
        return np.array(columns, dtype=np.float64).T.reshape(len(columns[0]), len(columns))


class RunLog:
    """Appends one run to a SQLite file; every :meth:`record` is committed before it returns."""

    def __init__(self, path: str | Path, name: str, every: int, layers: list[dict[str, Any]]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")  # durable against a crash of the process
        self._db.executescript(SCHEMA)
        cursor = self._db.execute(
            "insert into runs (name, started, every, layers, bins) values (?, ?, ?, ?, ?)",
            (name, time.time(), every, json.dumps(layers), BINS),
        )
        self.run = int(cursor.lastrowid or 0)

    def record(
        self,
        step: int,
        when: float,
        loss: float,
        metrics: dict[str, float],
        stats: StepStats | None = None,
        alerts: Sequence[Alert] = (),
    ) -> None:
        """Write one step (and its sample and alerts) as one transaction."""
        db = self._db
        db.execute("begin")
        try:
            db.execute(
                "insert or replace into steps values (?, ?, ?, ?, ?)",
                (self.run, step, when, _real(loss), json.dumps(metrics)),
            )
            if stats is not None:
                db.execute(
                    "insert or replace into samples values (?, ?, ?)",
                    (self.run, step, pack(stats).tobytes()),
                )
            for alert in alerts:
                db.execute(
                    "insert into alerts values (?, ?, ?, ?, ?)",
                    (self.run, alert.step, alert.layer, alert.kind, alert.message),
                )
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise

    def close(self) -> None:
        try:
            self._db.execute("update runs set finished = ? where id = ?", (time.time(), self.run))
        finally:
            self._db.close()


def _real(value: float) -> float | None:
    return None if value != value else value  # NaN is stored as NULL and read back as NaN


def read_runs(path: str | Path) -> list[RunHistory]:
    """Every run in a log file, finished or interrupted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no training log at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        runs = []
        for run, name, finished, every, layers_json, bins in db.execute(
            "select id, name, finished, every, layers, bins from runs order by id"
        ):
            if bins != BINS:
                raise ValueError(f"run {name!r} of {path} was written with {bins} bins, not {BINS}")
            layers = json.loads(layers_json)
            history = RunHistory(name, every, layers, finished=finished is not None)
            for step, when, loss, metrics in db.execute(
                "select step, time, loss, metrics from steps where run = ? order by step", (run,)
            ):
                history.add_step(step, when, float("nan") if loss is None else loss,
                                 json.loads(metrics))  # fmt: skip
            for step, data in db.execute(
                "select step, data from samples where run = ? order by step", (run,)
            ):
                row = np.frombuffer(data, dtype=np.float64)
                history.samples.append(unpack(step, row, len(layers)))
            for step, layer, kind, message in db.execute(
                "select step, layer, kind, message from alerts where run = ? order by step", (run,)
            ):
                history.alerts.append(Alert(step, layer, kind, message))
            runs.append(history)
        return runs
    finally:
        db.close()
