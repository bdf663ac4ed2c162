"""TrainingMonitor: loss, metrics, and per-layer distributions and gradients, live while training.

The recording (:class:`~modelviz_widgets.capture.training.Recorder`) runs inside
:meth:`TrainingMonitor.step`; what it recorded reaches the browser as appended chunks of binary
history at most ``1 / PUBLISH_INTERVAL`` times a second, whatever the step rate, so the view can
scrub and switch layers on its own while the kernel is busy with the training cell. The loss
curves are bqplot lines, updated at most ``1 / FIGURE_INTERVAL`` times a second.

Updates made on another thread (``monitor.run(train_fn)``) are handed to the kernel's event loop,
never sent from the training thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import traitlets
from torch import nn

from ..capture.hooks import model_lock
from ..capture.training import Recorder
from ..capture.training_log import RunHistory, read_runs
from ..capture.training_stats import BINS, QUANTITIES
from .base import ModelWidget, load_bundle
from .composite import CompositeView, forwarded
from .deadlines import DEADLINES
from .training_history import LossFigure, send_history

PUBLISH_INTERVAL = 0.1
"""Seconds between two view updates at most (about 10 a second)."""

FIGURE_INTERVAL = 0.5
"""Seconds between two updates of the loss curves at most."""

MAX_ALERTS = 200
"""Alerts kept in the view (the latest)."""


class TrainingMonitorCore(ModelWidget):
    """The anywidget part of :class:`TrainingMonitor`: layer selector, step scrubber, heat strips
    of the distributions over time, gradient norms and update ratios, alerts."""

    _esm = load_bundle("training_monitor")

    runs = traitlets.List(traitlets.Dict()).tag(sync=True)
    """One entry per run shown: ``{name, every, layers, live, finished}``; run 0 first."""

    metric_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Columns of the step history after step, time and loss."""

    bins = traitlets.Int(BINS).tag(sync=True)
    """Bins of every histogram."""

    quantities = traitlets.List(traitlets.Unicode(), list(QUANTITIES)).tag(sync=True)
    """The histogrammed tensors of a layer, in the order of a sample row."""

    latest_step = traitlets.Int(-1).tag(sync=True)
    """Last recorded step of run 0 (-1: none yet)."""

    running = traitlets.Bool(False).tag(sync=True)
    """True while ``run()`` trains in the background."""

    alerts = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Latest alerts: ``{run, step, layer, kind, message}``."""

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Layer shown in the strips and curves (chosen in the browser; works while training)."""

    scrub = traitlets.Int(-1).tag(sync=True, echo_update=False)
    """Sampled step shown in the layer table (-1: follow the latest)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_custom)
        self._on_sync: Callable[[], None] | None = None

    def _on_custom(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "sync" and self._on_sync:
            self._on_sync()


class TrainingMonitor(CompositeView):
    """Watch a model learn: loss and metrics every step; every ``every`` steps, per layer, the
    distributions of weights, biases and gradients, their norms, the update-to-weight ratio and
    activation statistics (dead ReLU units, saturated sigmoid / tanh outputs); alerts when a
    gradient vanishes or explodes, most units are dead, or a value turns NaN.

    Call :meth:`step` after each optimizer step of your loop. Only reduced numbers leave the
    model's device; hooks are attached only for sampled steps. The view can be explored (layers,
    steps) while the training cell still runs; to keep the kernel free for other widgets, train in
    the background with :meth:`run`.

    Parameters
    ----------
    model
        The model being trained (``DistributedDataParallel`` is looked through; only rank 0 shows
        and logs, every rank computes its share).
    every
        Sample statistics on steps 0, ``every``, ``2 * every``...
    log
        Path of a SQLite file that every recorded step is committed to; reopen it with
        :meth:`load`.
    layers
        Layer names to monitor; by default every layer with parameters and every activation.
    name
        Name of the run (default: the log's file name, or "run").
    """

    runs = forwarded("runs", "The runs shown, run 0 first.")
    alerts = forwarded("alerts", "The latest alerts.")
    layer = forwarded("layer", "Layer shown in the strips and curves.")
    latest_step = forwarded("latest_step", "Last recorded step.")
    running = forwarded("running", "True while run() trains in the background.")

    def __init__(
        self,
        model: nn.Module | None,
        every: int = 10,
        log: str | Path | None = None,
        layers: Any = None,
        name: str | None = None,
        *,
        _histories: Sequence[RunHistory] = (),
        **kwargs: Any,
    ) -> None:
        self._recorder = Recorder(model, every, log, layers, name) if model is not None else None
        self._histories: list[RunHistory] = (
            [self._recorder.history] if self._recorder is not None else []
        )
        self._histories += list(_histories)
        if not self._histories:
            raise ValueError("nothing to show: pass a model, or use TrainingMonitor.load(path)")
        self._model = None if self._recorder is None else self._recorder.model
        self._model_lock = None if self._model is None else model_lock(self._model)
        self._sent = (0, 0)
        self._alerts_seen: tuple[int, ...] | None = None  # each run's alert count when last sent
        self._last_publish = 0.0
        self._last_figure = 0.0
        self._deadline_due = 0.0  # when the pending deadline (DEADLINES) comes, if one is pending
        self._queued = False
        self._trailing_queued = False  # on the kernel's loop (_publish_trailing)
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._run_error: BaseException | None = None
        self._owner = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        first = self._histories[0]
        try:
            core = TrainingMonitorCore(
                runs=[self._describe(h, i) for i, h in enumerate(self._histories)],
                metric_names=list(first.metrics),
                layer=first.layers[0]["name"] if first.layers else "",
                **kwargs,
            )
        except BaseException:
            if self._recorder is not None:
                self._recorder.close()  # its hooks for step 0 are on the model already
            raise
        core._on_sync = self._resync
        self._loss = LossFigure(self._histories)
        super().__init__(core, [self._loss.figure])
        self.add_class("mvz-training-monitor")
        self._publish(force=True)

    # -- recording --

    def step(self, loss: Any = None, **metrics: Any) -> None:
        """Record the step that just ran: call it after ``optimizer.step()``.

        ``loss`` and each metric are numbers or one-element tensors. A tensor on an accelerator is
        not read at every step (that waits for the device, as ``loss.item()`` does): plain steps
        keep a copy there, read with the others at the next sampled step or view update. A NaN
        raises an alert in the view, never an exception here.
        """
        recorder = self._recorder
        if recorder is None:
            recorder = self._require_recorder()  # raises
        with self._lock:
            recorder.record(loss, **metrics)
        now = time.monotonic()
        last = self._last_publish
        if now - last >= PUBLISH_INTERVAL:
            self._request_publish()
        elif not self._trailing_queued:
            self._show_latest_within(last + PUBLISH_INTERVAL - now)
        if self._model_lock is not None:
            # A step boundary: widgets waiting to run the model (FeatureMaps, Saliency...) go now.
            self._model_lock.yield_turn()

    def run(self, train: Callable[..., Any], *args: Any, **kwargs: Any) -> threading.Thread:
        """Run ``train(*args, **kwargs)`` (your loop, calling :meth:`step`) in a background thread.

        The kernel stays free: other widgets on the same model re-run their hooks between two
        training steps, never in the middle of one (the loop holds the model's lock and hands it
        over at each :meth:`step`). :meth:`wait` joins the thread and re-raises its error.
        """
        model = self._require_recorder().model
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("training is already running in the background; wait() for it")
        self._run_error = None

        def target() -> None:
            try:
                with model_lock(model):
                    train(*args, **kwargs)
            except Exception as error:  # shown in the view and re-raised by wait()
                self._run_error = error
                self._on_loop(functools.partial(self.core._fail, error))
            finally:
                self._on_loop(self._finish_run)

        self.core.running = True
        self._thread = threading.Thread(target=target, name="modelviz-training", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> None:
        """Block until background training ends; re-raise its exception if it failed."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"training still running after {timeout} s")
        self._finish_run()
        if self._run_error is not None:
            error, self._run_error = self._run_error, None
            raise error

    def _finish_run(self) -> None:
        self.core.running = False
        self._publish(force=True)

    @property
    def history(self) -> RunHistory:
        """Everything recorded in run 0."""
        return self.histories[0]

    @property
    def histories(self) -> list[RunHistory]:
        """Every run shown, run 0 first."""
        self._resolve()
        return list(self._histories)

    @classmethod
    def load(cls, paths: str | Path | Sequence[str | Path], **kwargs: Any) -> TrainingMonitor:
        """Reopen finished or interrupted runs from SQLite logs; several files or runs overlay."""
        files = [paths] if isinstance(paths, (str, Path)) else list(paths)
        histories = [history for path in files for history in read_runs(path)]
        if not histories:
            raise ValueError(f"no runs in {', '.join(map(str, files))}")
        return cls(None, _histories=histories, **kwargs)

    def close(self) -> None:
        """Remove the hooks, close the log and the view; the model is as it was."""
        if "_recorder" not in self.__dict__:
            return super().close()
        thread = getattr(self, "_thread", None)  # absent when construction failed
        if thread is not None and thread.is_alive():
            raise RuntimeError("training is still running in the background; wait() first")
        DEADLINES.cancel(self)
        try:
            if self._recorder is not None:
                self._recorder.close()  # raises when the last losses cannot be read
        finally:
            self._model = None
            self._model_lock = None
            super().close()

    def _resolve(self) -> None:
        """Record the steps whose losses are still tensors on the device (read together)."""
        if self._recorder is not None:
            with self._lock:
                self._recorder.resolve()

    def _require_recorder(self) -> Recorder:
        if self._recorder is None:
            raise RuntimeError("this monitor shows loaded runs; it has no model to record")
        return self._recorder

    # -- publishing --

    def _resync(self) -> None:
        """Answer a view's sync request: every run from its start (under the recording lock, so a
        step recorded by a background ``run()`` is never sent half-written)."""
        with self._lock:
            if self.core.comm is None:
                return
            self._resolve()
            for index, history in enumerate(self._histories):
                ends = send_history(self.core, index, history, 0, 0, reset=True)
                if index == 0:
                    self._sent = ends

    def _on_loop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the thread that owns the widgets (the kernel's loop)."""
        if self._loop is None or threading.get_ident() == self._owner:
            callback()
            return
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed (kernel shutting down)
            callback()

    def _request_publish(self) -> None:
        if threading.get_ident() == self._owner or self._loop is None:
            self._publish()
            return
        with self._lock:
            if self._queued:
                return
            self._queued = True
        self._on_loop(self._publish)

    def _show_latest_within(self, delay: float) -> None:
        """Make sure the latest step is shown within ``delay`` seconds, or as soon as the kernel
        can show it, even if no step follows (the final step of a loop)."""
        if self._loop is not None and threading.get_ident() == self._owner:
            # Training in a cell, in the kernel's own thread: its event loop waits until the cell
            # ends, and nothing can be shown before then but by the steps themselves. One
            # callback for then, instead of a deadline per publish (and a thread woken for it).
            try:  # the monitor held weakly: a closed one waits for nothing to be collected
                self._loop.call_soon(_publish_trailing, weakref.ref(self))
            except RuntimeError:  # the loop is closed (kernel shutting down)
                pass
            else:
                self._trailing_queued = True
                return
        if self._deadline_due > self._last_publish + PUBLISH_INTERVAL + 1e-3 or not (
            DEADLINES.pending(self)
        ):  # no deadline soon enough yet (the common case has one: then nothing to do here)
            self._publish_later(delay)

    def _publish_later(self, delay: float) -> None:
        """A deadline in ``delay`` seconds, in the deadline thread (training in a background
        thread, or without an event loop), replacing a later one."""
        with self._lock:
            due = time.monotonic() + max(delay, 0.0)
            if DEADLINES.pending(self) and self._deadline_due <= due + 0.001:
                return  # the pending deadline comes soon enough
            self._deadline_due = due  # replaces a later one (the figure's): this one goes first
            DEADLINES.set(self, delay, "_deadline")

    def _deadline(self) -> None:
        """The deadline thread's call: publish on the widgets' thread."""
        self._on_loop(self._publish_due)

    def _publish_due(self) -> None:
        """A deferred publish; put off again when a step published since it was deferred."""
        with self._lock:
            wait = self._last_publish + PUBLISH_INTERVAL - time.monotonic()
        if wait > 0.001:
            self._publish_later(wait)
        else:
            self._publish()

    def _publish(self, force: bool = False) -> None:
        with self._lock:
            self._queued = False
            if self.core.comm is None:  # closed
                return
            self._last_publish = time.monotonic()
            self._resolve()
            if self._trailing_queued and self._loop is not None and self._loop.is_closed():
                self._trailing_queued = False  # its callback will never run: deadlines instead
            history = self._histories[0]
            if force:
                for index, other in enumerate(self._histories):
                    ends = send_history(self.core, index, other, 0, 0, reset=True)
                    if index == 0:
                        self._sent = ends
            else:
                self._sent = send_history(self.core, 0, history, *self._sent)
            # The alerts only grow: rebuilt when a run has new ones (a long run keeps MAX_ALERTS
            # of them, which each publish would otherwise turn into dicts and compare).
            seen = tuple(len(other.alerts) for other in self._histories)
            alerts = None
            if force or seen != self._alerts_seen:
                self._alerts_seen = seen
                alerts = [
                    {"run": index, **alert.as_dict()}
                    for index, other in enumerate(self._histories)
                    for alert in other.alerts[-MAX_ALERTS:]
                ][-MAX_ALERTS:]
            with self.core.hold_sync():
                self.core.latest_step = history.steps[-1] if history.steps else -1
                if alerts is not None and alerts != self.core.alerts:
                    self.core.alerts = alerts
                if list(history.metrics) != self.core.metric_names:
                    self.core.metric_names = list(history.metrics)
            if force or self._last_publish - self._last_figure >= FIGURE_INTERVAL:
                self._last_figure = self._last_publish
                self._loss.update(self._histories)
            elif not self._trailing_queued and not DEADLINES.pending(self):
                self._show_latest_within(FIGURE_INTERVAL)

    def _figure_arrays(self) -> dict[str, np.ndarray]:
        return self._loss.arrays()

    @staticmethod
    def _describe(history: RunHistory, index: int) -> dict[str, Any]:
        return {
            "name": history.name,
            "every": history.every,
            "layers": [layer["name"] for layer in history.layers],
            "live": index == 0 and not history.finished,
            "finished": history.finished,
        }


def _publish_trailing(monitor: weakref.ref[TrainingMonitor]) -> None:
    """The kernel's loop is free again (the training cell ended, or the loop runs between steps):
    show what the steps since the monitor's last publish recorded."""
    shown = monitor()
    if shown is not None:
        shown._trailing_queued = False
        shown._publish_due()
