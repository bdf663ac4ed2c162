"""Recording a training run: loss and metrics every step, statistics every ``every`` steps,
alerts, the durable log, and the reduction over ranks in distributed training.

No widgets here: :class:`Recorder` is what ``mv.TrainingMonitor`` drives, and what a script
without a notebook can use directly.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .layers import check_model
from .training_log import Alert, RunHistory, RunLog
from .training_stats import Reducer, StatsCollector, StepStats

VANISHING = 1e-7
"""A layer's gradient vanishes when its norm is below this times its weight norm."""

EXPLODING = 1e3
"""A layer's gradient explodes when its norm is above this."""

MOSTLY_DEAD = 0.5
"""Alert when more than this fraction of a ReLU layer's units never fired in a sampled batch."""

MOSTLY_SATURATED = 0.5
"""Alert when more than this fraction of a sigmoid or tanh layer's outputs are saturated."""

MAX_DEFERRED = 256
"""Steps whose loss and metrics, tensors on an accelerator, wait to be read all at once."""

DEFERRED_DEVICES = frozenset({"cuda", "xpu", "mps"})
"""Device types whose tensors plain steps keep unread (others are read at once, as on the CPU)."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def distributed_rank() -> tuple[int, int]:
    """``(rank, world size)`` under an initialised ``torch.distributed``; ``(0, 1)`` otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RankReducer(Reducer):
    """Sums and maxima over every rank, onto rank 0 (``torch.distributed.reduce``)."""

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        torch.distributed.reduce(tensor, dst=0, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        torch.distributed.reduce(tensor, dst=0, op=torch.distributed.ReduceOp.MAX)
        return tensor


def as_number(value: Any) -> float:
    """A loss or metric as a float (a 0-d or one-element tensor, a numpy scalar, a number)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"a loss or metric must be one number; got a tensor of shape {list(value.shape)}"
            )
        if value.is_complex():
            raise TypeError("a loss or metric must be a real number; got a complex tensor")
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"a loss or metric must be a number or a one-element tensor, not {type(value).__name__}"
        ) from None


class Recorder:
    """Records one training run of ``model``; a newer recorder of the same model closes it.

    Parameters
    ----------
    model
        The model being trained (a ``DistributedDataParallel`` wrapper is looked through).
    every
        Statistics are computed on steps 0, ``every``, ``2 * every``...
    log
        Path of a SQLite file to commit every step to (rank 0 only), or None.
    layers
        Layer names to monitor; by default every layer with parameters, and every activation.
    name
        Name of the run (default: the log file's stem, or "run").
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = 10,
        log: str | Path | None = None,
        layers: Any = None,
        name: str | None = None,
    ) -> None:
        check_model(model)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive whole number of steps; got {every!r}")
        self.model = unwrap(model)
        self.every = every
        self.rank, self.world = distributed_rank()
        self.collector = StatsCollector(self.model, layers)
        self.layer_names = [spec.name for spec in self.collector.layers]
        described = [spec.describe() for spec in self.collector.layers]
        run_name = name or (Path(log).stem if log is not None else "run")
        self.history = RunHistory(run_name, every, described)
        self.log = (
            RunLog(log, run_name, every, described) if log is not None and self.rank == 0 else None
        )
        # Steps since the last sample, in distributed training: step, time, loss, given, metrics.
        self._pending_losses: list[tuple[int, float, float, bool, dict[str, float]]] = []
        # Steps not read yet (one process, no log): step, time, loss, given, metrics, where a
        # loss or metric on an accelerator is still a tensor there. Reading it is a device sync
        # (as .item() is), so plain steps keep them and resolve() reads them all in one copy.
        self._deferred: list[tuple[int, float, Any, bool, dict[str, Any]]] = []
        self._may_defer = self.world == 1 and self.log is None
        self._defer_on_cpu = False  # tests: take the deferred path with CPU tensors too
        self._step = 0
        self._closed = False
        # One recorder per model: a new one (a re-run notebook cell) closes the one before, whose
        # widget may have been dropped without close(), so hooks never pile up on the model.
        reference = _recorders.get(self.model)
        previous = reference() if reference is not None else None
        if previous is not None:
            previous.close()
        _recorders[self.model] = weakref.ref(self)
        self.collector.arm()  # for step 0's forward

    @property
    def next_step(self) -> int:
        """Number of the step the next :meth:`record` call records."""
        return self._step

    def record(self, loss: Any = None, **metrics: Any) -> tuple[int, StepStats | None, list[Alert]]:
        """Record the step that just ran (after its backward and optimizer step).

        Returns its number, its statistics when it was sampled, and any new alerts. Rank 0 keeps
        them; other ranks return ``None`` statistics and no alerts. A plain step whose loss or a
        metric is a tensor on an accelerator is kept unread (reading it waits for the device);
        :meth:`resolve` records it, with its alerts, at the next sampled step or view update.
        """
        if self._closed:
            raise RuntimeError("this monitor is closed; create a new one to record more steps")
        step = self._step
        self.collector.trainer = threading.get_ident()
        when = time.time()
        if (
            self._may_defer
            and step % self.every != 0
            and (
                self._defer_on_cpu
                or (
                    isinstance(loss, torch.Tensor)
                    and not loss.is_cpu
                    and loss.device.type in DEFERRED_DEVICES
                )
                or (metrics and _on_accelerator(metrics))
            )
        ):
            self._step += 1
            try:
                return step, None, self._defer(step, when, loss, metrics)
            finally:
                if (step + 1) % self.every == 0:
                    self.collector.arm()  # hooks for the next step's forward; weights before it
        # The steps before this one come first in the history (a failed read raises before this
        # step takes its number).
        earlier = self.resolve() if self._deferred else None
        self._step += 1
        value = float("nan") if loss is None else as_number(loss)
        given = loss is not None
        numbers = {name: as_number(v) for name, v in metrics.items()}
        stats = None
        alerts: list[Alert] = []
        if self.world > 1:
            self._pending_losses.append((step, when, value, given, numbers))
            if step % self.every == 0:
                stats, alerts = self._sample_distributed(step)
        else:
            if step % self.every == 0:
                stats = self.collector.collect(step)
            alerts = self._alerts(step, value, stats, given)
            self._keep(step, when, value, numbers, stats, alerts)
        if (step + 1) % self.every == 0:
            self.collector.arm()  # hooks for the next step's forward; the weights before it
        return step, stats, earlier + alerts if earlier else alerts

    def _defer(self, step: int, when: float, loss: Any, metrics: dict[str, Any]) -> list[Alert]:
        """Keep a plain step unread: its tensors copied where they are (a tensor changed in place
        later keeps this step's value), its numbers as floats. A bad value raises here."""
        with torch.no_grad():
            kept_loss = None if loss is None else _kept(loss)
            kept = {name: _kept(v) for name, v in metrics.items()}
        self._deferred.append((step, when, kept_loss, loss is not None, kept))
        return self.resolve() if len(self._deferred) >= MAX_DEFERRED else []

    def resolve(self) -> list[Alert]:
        """Read the deferred steps' losses and metrics (one copy to the host for each device and
        dtype) and record them; returns their alerts. The view calls this before each update.

        When the copy fails, each value is read on its own, a value that cannot be read is
        recorded as NaN, and the error is raised once every step is recorded (nothing waits to
        fail again)."""
        deferred, self._deferred = self._deferred, []
        if not deferred:
            return []
        tensors = [
            v
            for _, _, loss, _, metrics in deferred
            for v in (loss, *metrics.values())
            if isinstance(v, torch.Tensor)
        ]
        error: Exception | None = None
        try:  # off the training thread, the copies may be queued on another stream
            read = _read_all(tensors, synchronize=threading.get_ident() != self.collector.trainer)
        except Exception as failure:
            read, error = _read_each(tensors), failure
        alerts: list[Alert] = []
        for step, when, loss, given, metrics in deferred:
            value = math.nan if loss is None else read.get(id(loss), loss)
            numbers = {name: read.get(id(v), v) for name, v in metrics.items()}
            new = self._alerts(step, value, None, given)
            self._keep(step, when, value, numbers, None, new)
            alerts += new
        if error is not None:
            raise error
        return alerts

    def _sample_distributed(self, step: int) -> tuple[StepStats | None, list[Alert]]:
        """Reduce the losses since the last sample and the activation statistics onto rank 0."""
        reducer = RankReducer()
        stats = self.collector.collect(step, reducer)
        pending, self._pending_losses = self._pending_losses, []
        # One column per metric seen since the last sample (a metric passed on some steps only,
        # such as an accuracy per epoch, is NaN on the others); every rank must pass the same.
        names = list(dict.fromkeys(name for *_, numbers in pending for name in numbers))
        rows = [[v, *(n.get(name, math.nan) for name in names)] for _, _, v, _, n in pending]
        table = torch.tensor(rows, dtype=torch.float64).reshape(len(pending), 1 + len(names))
        losses = reducer.sum(table) / self.world
        if self.rank != 0:
            return None, []
        alerts: list[Alert] = []
        for (number, when, _, given, numbers), row in zip(pending, losses.tolist(), strict=True):
            mean = {name: row[1 + names.index(name)] for name in numbers}
            sample = stats if number == step else None
            new = self._alerts(number, row[0], sample, given)
            self._keep(number, when, row[0], mean, sample, new)
            alerts += new
        return stats, alerts

    def _keep(
        self,
        step: int,
        when: float,
        loss: float,
        metrics: dict[str, float],
        stats: StepStats | None,
        alerts: list[Alert],
    ) -> None:
        if self.rank != 0:
            return
        self.history.add_step(step, when, loss, metrics)
        if stats is not None:
            self.history.samples.append(stats)
        self.history.alerts.extend(alerts)
        if self.log is not None:
            self.log.record(step, when, loss, metrics, stats, alerts)

    def _alerts(
        self, step: int, loss: float, stats: StepStats | None, given: bool = True
    ) -> list[Alert]:
        """What deserves a look at this step (``given``: a loss was passed)."""
        alerts = []
        if given and not math.isfinite(loss):
            alerts.append(Alert(step, "", "loss", f"the loss is {loss} at step {step}"))
        if stats is None:
            return alerts
        # Python numbers: indexing numpy rows layer by layer costs more than the checks.
        nan = (stats.nan_counts.sum(axis=1) > 0).tolist()
        norms = stats.norms.tolist()
        activations = stats.activations[:, 3:].tolist()
        for index, name in enumerate(self.layer_names):
            alerts += _layer_alerts(step, name, nan[index], norms[index], *activations[index])
        return alerts

    def close(self) -> None:
        """Remove the hooks and close the log; the model is as it was."""
        try:
            self.resolve()
        finally:
            self._closed = True
            self.collector.disarm()
            self.collector._previous = None
            if self.log is not None:
                self.log.close()
                self.log = None


_recorders: weakref.WeakKeyDictionary[nn.Module, weakref.ref[Recorder]] = (
    weakref.WeakKeyDictionary()
)
"""Model -> its latest recorder."""


def _on_accelerator(metrics: dict[str, Any]) -> bool:
    """Whether a metric is a tensor on an accelerator (reading it waits for the device)."""
    return any(
        isinstance(v, torch.Tensor) and not v.is_cpu and v.device.type in DEFERRED_DEVICES
        for v in metrics.values()
    )


def _kept(value: Any) -> Any:
    """A loss or metric as kept for a deferred step: a tensor's copy, or a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            as_number(value)  # raises, saying what is wrong
        return value.detach().reshape(()).clone()
    return as_number(value)


def _read_all(tensors: list[torch.Tensor], synchronize: bool) -> dict[int, float]:
    """Each 0-d tensor's value by ``id``, as ``.item()`` gives it: one copy to the host for each
    device and dtype; with ``synchronize``, after every stream of their devices has finished."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    if synchronize:
        for device in {device for device, _ in groups if device.type in DEFERRED_DEVICES}:
            if device.type == "mps":
                torch.mps.synchronize()  # one device, no argument
            else:
                getattr(torch, device.type).synchronize(device)
    read: dict[int, float] = {}
    for group in groups.values():
        values = torch.stack(group).tolist()
        read.update((id(t), float(v)) for t, v in zip(group, values, strict=True))
    return read


def _read_each(tensors: list[torch.Tensor]) -> dict[int, float]:
    """:func:`_read_all` one tensor at a time, NaN for a tensor that cannot be read."""
    read: dict[int, float] = {}
    for tensor in tensors:
        try:
            read[id(tensor)] = float(tensor.item())
        except Exception:
            read[id(tensor)] = math.nan
    return read


def _layer_alerts(
    step: int, name: str, nan: bool, norms: list[float], dead: float, saturated: float
) -> list[Alert]:
    """One layer's alerts from its NaN flag, its four norms and its dead and saturated fractions."""
    weight, _, grad, _ = norms
    alerts = []
    if nan or any(math.isinf(value) for value in norms):
        alerts.append(Alert(step, name, "nan", f"{name}: NaN or Inf in its weights or gradients"))
    elif grad > EXPLODING:
        alerts.append(
            Alert(step, name, "exploding", f"{name}: gradient norm {grad:.3g}, exploding")
        )
    elif grad < VANISHING * max(weight, 1e-12):  # False for NaN: no gradient, no alert
        alerts.append(
            Alert(step, name, "vanishing", f"{name}: gradient norm {grad:.3g}, vanishing")
        )
    if dead > MOSTLY_DEAD:
        alerts.append(Alert(step, name, "dead", f"{name}: {dead:.0%} of its units are dead"))
    if saturated > MOSTLY_SATURATED:
        alerts.append(
            Alert(step, name, "saturated", f"{name}: {saturated:.0%} of its outputs saturated")
        )
    return alerts
