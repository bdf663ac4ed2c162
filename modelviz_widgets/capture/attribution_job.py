"""What one attribution call carries (inputs, target, options, progress) and the helpers every
method shares: calling the model, per-row targets, the predicted class, progress reporting."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hooks import output_logits, target_score
from .inputs import call_model, input_error

RowTarget = torch.Tensor | Callable[[Any], torch.Tensor] | None
"""One class index per row (a long tensor), a callable on the model output, or ``None``."""

ProgressCallback = Callable[[int, int], Any]

# Automatic progress appears once a computation is expected to take longer than this.
AUTO_PROGRESS_AFTER_S = 1.0


class Progress:
    """Counts finished forward/backward chunks and reports them.

    ``report`` is ``None`` (automatic: a progress line, or a ``tqdm.auto`` bar when tqdm is
    installed, once the computation is expected to run longer than about a second), ``False``
    (silent), ``True`` (always shown) or a callable ``(done, total)`` called after each chunk.
    """

    def __init__(self, report: bool | ProgressCallback | None, label: str) -> None:
        self.callback = report if callable(report) else None
        self.show = report is None or report is True
        self.always = report is True
        self.label = label
        self.total = 1
        self.done = 0
        self.started = time.perf_counter()
        self._bar: Any = None  # a tqdm bar, when tqdm is installed and a display is up
        self._line_width = 0  # width of the stderr line, when that is the display

    def plan(self, total: int) -> None:
        """Set how many chunks the computation will take."""
        self.total = max(1, total)

    def step(self) -> None:
        """One chunk is done. Whatever a callable raises (``Cancelled``) aborts the computation."""
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)
        elif self.show:
            self._display()

    def _display(self) -> None:
        elapsed = time.perf_counter() - self.started
        if self._bar is None and not self._line_width:
            expected = elapsed / self.done * self.total
            if self.done >= self.total or not (self.always or expected > AUTO_PROGRESS_AFTER_S):
                return  # nothing left to wait for, or too quick to be worth a display
            self._bar = _tqdm_bar(self.total, self.label)
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.refresh()
            return
        remaining = elapsed / self.done * (self.total - self.done)
        text = (
            f"{self.label}: {self.done}/{self.total} chunks, {elapsed:.1f} s, "
            f"~{remaining:.1f} s left"
        )
        sys.stderr.write("\r" + text.ljust(self._line_width))
        sys.stderr.flush()
        self._line_width = max(self._line_width, len(text))

    def close(self) -> None:
        """Take the progress display down (on success and on error alike)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._line_width:
            sys.stderr.write("\r" + " " * self._line_width + "\r")
            sys.stderr.flush()
            self._line_width = 0


def _tqdm_bar(total: int, label: str) -> Any:
    """A ``tqdm.auto`` bar (a notebook bar where ipywidgets is there), or ``None`` without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=label, unit="chunk", leave=False)


@dataclass
class Job:
    """One ``attribute`` call, checked and normalised.

    Attributes
    ----------
    model
        The model, already in eval mode for the duration of the call.
    inputs
        The batched inputs ``[N, ...]`` on the model's device, detached.
    target
        ``[N]`` class indices, a callable on the output, or ``None`` for the predicted class.
    target_bounds
        The smallest and largest given class index, checked against the output's width in
        Python (no device sync per chunk); ``None`` for a callable or predicted target.
    layer
        The layer name (Grad-CAM) or ``None``.
    options
        The method's options, defaults filled in.
    progress
        Where finished chunks are reported.
    """

    model: nn.Module
    inputs: torch.Tensor
    target: RowTarget
    target_bounds: tuple[int, int] | None
    layer: str | None
    options: dict[str, Any]
    progress: Progress

    def forward(self, batch: torch.Tensor) -> Any:
        """The model on ``batch``; a failure of the model's own forward names the expected input."""
        try:
            return call_model(self.model, batch)
        except (RuntimeError, IndexError) as error:
            raise input_error(self.model, batch, error) from error

    def resolved_target(self) -> torch.Tensor | Callable[[Any], torch.Tensor]:
        """The target, ``None`` replaced by each sample's predicted class (one extra forward)."""
        if self.target is not None:
            return self.target
        with torch.no_grad():
            output = self.forward(self.inputs.clone())
        return output_logits(output).reshape(self.inputs.shape[0], -1).argmax(dim=1)

    def score(self, output: Any, target: RowTarget) -> torch.Tensor:
        """The summed target score of a batch's output: what gradients are taken of. In eval
        mode samples are independent, so each row's gradient is its own score's."""
        if isinstance(target, torch.Tensor):
            return self.row_scores(output, target, target.shape[0]).sum()
        return target_score(output, target)

    def row_scores(
        self, output: Any, target: torch.Tensor | Callable[[Any], torch.Tensor], rows: int
    ) -> torch.Tensor:
        """One target score per row of the batch, shape ``[rows]``."""
        if callable(target) and not isinstance(target, torch.Tensor):
            scores = target(output)
            if not isinstance(scores, torch.Tensor):
                kind = type(scores).__name__
                raise TypeError(f"the target callable must return a tensor, got {kind}")
            if scores.numel() != rows:
                raise ValueError(
                    f"occlusion needs one score per sample: the target callable returned shape "
                    f"{list(scores.shape)} for a batch of {rows}; return a tensor of shape [{rows}]"
                )
            return scores.reshape(rows)
        logits = output_logits(output).reshape(rows, -1)
        self._check_bounds(logits.shape[1])
        return logits.gather(1, target[:, None]).reshape(rows)

    def _check_bounds(self, n_classes: int) -> None:
        if self.target_bounds is None:
            return
        low, high = self.target_bounds
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"target index {low if low < 0 else high} is out of range: the output has "
                f"{n_classes} classes, so valid targets are 0..{n_classes - 1}"
            )


def rows_target(target: RowTarget, copies: int, interleave: bool) -> RowTarget:
    """The per-sample target for a batch holding ``copies`` of every sample: sample-major
    (``interleave``, ``[s0, s0, s1, s1]``) or copy-major (``[s0, s1, s0, s1]``)."""
    if not isinstance(target, torch.Tensor) or copies == 1:
        return target
    return target.repeat_interleave(copies) if interleave else target.repeat(copies)


def baseline_like(
    baseline: float | torch.Tensor | None, x: torch.Tensor, allow_none: bool = True
) -> torch.Tensor:
    """A baseline that broadcasts against the inputs ``x``: a float (or None, zeros, when
    ``allow_none``) as a ``1 x ... x 1`` tensor, a tensor expanded to ``x``'s shape."""
    if baseline is None and allow_none:
        baseline = 0.0
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full((1,) * x.dim(), float(baseline), dtype=x.dtype, device=x.device)
    if isinstance(baseline, torch.Tensor):
        value = baseline.to(device=x.device, dtype=x.dtype)
        try:
            return value.expand_as(x)
        except RuntimeError:
            raise ValueError(
                f"baseline of shape {list(baseline.shape)} does not broadcast to the inputs' "
                f"shape {list(x.shape)}; pass a float, a tensor shaped like one sample "
                f"{list(x.shape[1:])}, or one shaped like the inputs"
            ) from None
    valid = "None, a float or a tensor" if allow_none else "a float or a tensor"
    raise TypeError(f"baseline must be {valid}, got {type(baseline).__name__}")
