"""Statistics of a model in training, computed on its device; only reduced numbers leave it.

On a sampled step, for every monitored layer: histograms of its weight, bias and their gradients;
their norms; the update-to-weight ratio ``||W - W_prev|| / ||W_prev||`` against the weights one
step earlier; and, from forward hooks attached only for the sampled step's forward, activation
statistics: mean, standard deviation, the fraction of dead ReLU units (never positive over the
batch) and the fraction of saturated sigmoid / tanh outputs.

A histogram has :data:`BINS` equal bins over ``[-s, s]``, where ``s`` is the power of two at or
above the tensor's largest magnitude at that step (``edges(s)`` gives them). Binning against
power-of-two edges is exact in floating point (``floor(x * BINS / (2 s))`` involves no rounding),
so the counts are those numpy.histogram gives for the same edges (but for a negative subnormal
whose product with the factor underflows to zero, possible only at scales of 32 and more: it is
counted in the bin right of zero, not left). On a GPU, all tensors of a step are concatenated and
binned by a dozen device operations in all, and everything reaches the host in one copy; large CPU
models are binned in cache-sized chunks, their small tensors packed together
(``training_chunks``), and small models in numpy with a layout kept (``training_bins``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .hooks import model_lock, removing
from .layers import check_model, resolve_layers
from .training_activations import activation_kind
from .training_bins import (
    BINS,
    HostBins,
    histograms,
    norm_squares,
    sum_squares,
    to_host,
)
from .training_chunks import PackedTensors, histograms_cpu
from .training_outputs import LayerOutputs

QUANTITIES = ("weight", "bias", "weight_grad", "bias_grad")
"""The tensors of a layer that are histogrammed, in the order of :class:`StepStats` rows."""

HOST_DTYPES = (torch.float16, torch.float32, torch.float64)
"""Dtypes numpy has (not bfloat16)."""

HOST_LIMIT = 1_000_000
"""CPU models with at most this many parameter and gradient values are reduced with numpy."""


def edges(scale: float) -> np.ndarray:
    """The ``BINS + 1`` edges of a histogram of the given (power-of-two) scale."""
    return np.linspace(-scale, scale, BINS + 1)


@dataclass
class LayerSpec:
    """A monitored layer: its own weight and bias (either may be absent), its activation kind."""

    name: str
    module: nn.Module
    weight: nn.Parameter | None
    bias: nn.Parameter | None
    kind: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type(self.module).__name__,
            "weight": None if self.weight is None else list(self.weight.shape),
            "bias": None if self.bias is None else list(self.bias.shape),
            "activation": self.kind,
        }


def monitored_layers(model: nn.Module, layers: Any = None) -> list[LayerSpec]:
    """The layers to watch: by default every module with a weight or bias of its own, and every
    activation module; or the named ``layers``."""
    check_model(model)
    if layers is None:
        modules = {name: m for name, m in model.named_modules() if name}
    else:
        modules = resolve_layers(model, layers)
    specs = []
    for name, module in modules.items():
        weight = _own_parameter(module, "weight")
        bias = _own_parameter(module, "bias")
        kind = activation_kind(module)
        if layers is None and weight is None and bias is None and not kind:
            continue
        specs.append(LayerSpec(name, module, weight, bias, kind))
    if not specs:
        raise ValueError(
            "nothing to monitor: the model has no layer with a weight or bias of its own and no "
            "activation module; pass layers=[...] to choose some"
        )
    return specs


def _own_parameter(module: nn.Module, name: str) -> nn.Parameter | None:
    value = module._parameters.get(name)
    return value if isinstance(value, nn.Parameter) else None


@dataclass
class StepStats:
    """What one sampled step measured, on the host. Rows are layers, in layer order; the four
    quantities are :data:`QUANTITIES`."""

    step: int
    counts: np.ndarray  # [layers, 4, BINS]; zeros for an absent tensor
    scales: np.ndarray  # [layers, 4]: each histogram spans [-scale, scale]; NaN when absent
    nan_counts: np.ndarray  # [layers, 4]: NaN values (counted in no bin)
    norms: np.ndarray  # [layers, 4]: L2 norms; NaN when absent
    update_norms: np.ndarray  # [layers, 2]: ||W - W_prev|| and ||W_prev||; NaN when unknown
    activations: np.ndarray  # [layers, 5]: count, mean, std, dead fraction, saturated fraction

    @property
    def update_ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.update_norms[:, 0] / self.update_norms[:, 1]


class Reducer:
    """Combines per-rank numbers in distributed training (sums and maxima, onto rank 0)."""

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class StatsCollector:
    """Computes :class:`StepStats` for the monitored layers of a model.

    ``arm()`` before a sampled step's forward (it attaches the activation hooks and keeps the
    weights for the update ratio); ``collect(step)`` after its backward and optimizer step.
    Forwards in between that are not training are not measured: those of a module in eval mode
    without autograd (an evaluation inside the loop), and another widget's visual forward (made
    by another thread while it holds the model's lock, see :attr:`trainer`).
    Every layer's numbers come from a few batched operations (see the module's docstring) and
    one copy to the host; a ReLU layer's dead units from each unit's sum over the batch.
    """

    def __init__(self, model: nn.Module, layers: Any = None) -> None:
        self.layers = monitored_layers(model, layers)
        self._weights = [s.weight for s in self.layers]
        self._biases = [s.bias for s in self.layers]
        self._handles: list[Any] = []
        self.outputs = LayerOutputs([spec.kind for spec in self.layers])
        # The weights at arm(): a list of tensors, or one flat numpy copy for small CPU models.
        self._previous: list[torch.Tensor] | np.ndarray | None = None
        self._host_bins = HostBins()
        self._packed = PackedTensors()  # a large model's small tensors
        self._previous_buffer = torch.empty(0, dtype=torch.float32)
        self._previous_views: list[torch.Tensor] = []  # of the buffer, shaped as the weights
        self._weight_list: list[torch.Tensor] = [w for w in self._weights if w is not None]
        self._weight_rows: list[tuple[int, torch.Tensor]] = [
            (i, w) for i, w in enumerate(self._weights) if w is not None
        ]
        sizes = [w.numel() for w in self._weight_list]
        self._weight_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self._parameter_rows: list[tuple[int, torch.Tensor]] = [
            (column * len(self.layers) + i, p)
            for column, group in enumerate((self._weights, self._biases))
            for i, p in enumerate(group)
            if p is not None
        ]
        self._parameter_total = sum(p.numel() for _, p in self._parameter_rows)
        self._hooks = [self._hook(index) for index in range(len(self.layers))]
        self._lock = model_lock(model)
        self.trainer: int | None = None
        """Ident of the thread that trains (None: not known yet). Another thread's forward made
        while it holds the model's lock is a widget's visual forward, and is not measured."""

    # -- arming --

    def arm(self, previous_weights: bool = True) -> None:
        """Attach the activation hooks for the next forward; keep the weights as they are."""
        if self._handles:  # otherwise disarmed already, the outputs cleared
            self.disarm()
        self._handles = [
            spec.module.register_forward_hook(hook)
            for spec, hook in zip(self.layers, self._hooks, strict=True)
        ]
        weights = self._weight_list
        if previous_weights and weights:
            with torch.no_grad():
                if _host_sized(weights):  # one flat copy, into the buffer kept for it
                    shapes = [w.shape for w in weights]
                    if [v.shape for v in self._previous_views] != shapes:
                        buffer = torch.empty(sum(w.numel() for w in weights), dtype=torch.float32)
                        self._previous_views = [
                            part.view(shape)
                            for part, shape in zip(
                                buffer.split([w.numel() for w in weights]), shapes, strict=True
                            )
                        ]
                        self._previous_buffer = buffer
                    torch._foreach_copy_(self._previous_views, weights)  # under no_grad
                    self._previous = self._previous_buffer.numpy()
                else:  # one batched copy, into tensors kept for it (no fresh pages to fault in)
                    kept = self._previous
                    if (
                        not isinstance(kept, list)
                        or len(kept) != len(weights)
                        or any(
                            k.shape != w.shape or k.dtype != w.dtype or k.device != w.device
                            for k, w in zip(kept, weights, strict=True)
                        )
                    ):
                        kept = [torch.empty_like(w, memory_format=torch.contiguous_format)
                                for w in weights]  # fmt: skip
                    torch._foreach_copy_(kept, weights)
                    self._previous = kept

    def disarm(self) -> None:
        if self._handles:
            with removing(self._handles):
                pass
        self._handles = []
        self.outputs.clear()

    def _hook(self, index: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            if self.trainer not in (None, threading.get_ident()) and self._lock.held():
                return  # a visual forward run between two training steps (lock hand-over)
            if not module.training and not torch.is_grad_enabled():
                return  # an evaluation forward in the loop (eval mode, no autograd)
            self.outputs.add(index, output.detach())  # nothing there is recorded by autograd

        return hook

    # -- collecting --

    def collect(self, step: int, reducer: Reducer | None = None) -> StepStats:
        """Everything measured since :meth:`arm`; removes the hooks."""
        try:
            with torch.no_grad():
                return self._collect(step, reducer)
        finally:
            self.disarm()

    def _collect(self, step: int, reducer: Reducer | None) -> StepStats:
        n = len(self.layers)
        weights = self._weight_rows
        # Row r of the histogram pass is quantity r // n of layer r % n: the weights and biases
        # first, then the gradients there are.
        tensors = self._parameter_rows + [
            (row + 2 * n, parameter.grad)
            for row, parameter in self._parameter_rows
            if parameter.grad is not None
        ]
        device = tensors[0][1].device if tensors else torch.device("cpu")
        # numpy has no bfloat16: such models take the torch path.
        if (
            device.type == "cpu"
            and 2 * self._parameter_total <= HOST_LIMIT  # the tensors and their gradients
            and all(t.dtype in HOST_DTYPES for _, t in tensors)
        ):
            return self._collect_host(step, tensors, reducer)
        flat = [t for _, t in tensors]
        kept = self._previous
        earlier = None
        if isinstance(kept, list) and len(kept) == len(weights):
            pairs = zip(kept, weights, strict=True)
            same = all(k.shape == w.shape and k.dtype == w.dtype for k, (_, w) in pairs)
            earlier = kept if same else None
        fast = histograms_cpu(flat, earlier, self._packed) if device.type == "cpu" else None
        binned: tuple[torch.Tensor | None, ...]
        if fast is None:
            binned, updates = histograms(flat), self._update_squares(weights)
        else:  # the update ratio's sums too, from the same pass over the weights
            binned, fast_updates = fast[:3], fast[3]
            updates = fast_updates if earlier is not None else self._update_squares(weights)
        activations, dead = self.outputs.device_parts(device, reducer)
        host = to_host([*binned, updates, activations, dead], device)
        counts_host, scales_host, squares_host, update_host, act_host, dead_host = host

        # Row r of the passes is quantity r // n of layer r % n: index (r % n) * 4 + r // n of
        # the [layers, 4] tables.
        where = [(r % n) * 4 + r // n for r, _ in tensors]
        counts = np.zeros((n * 4, BINS), dtype=np.int64)
        nan_counts = np.zeros(n * 4, dtype=np.int64)
        scales = np.full(n * 4, np.nan)
        norms = np.full(n * 4, np.nan)
        if tensors:
            assert counts_host is not None and scales_host is not None
            assert squares_host is not None
            counts[where] = counts_host[:, 1 : BINS + 1]
            nan_counts[where] = counts_host[:, BINS + 2]
            scales[where] = scales_host
            norms[where] = np.sqrt(squares_host)
        update_norms = np.full((n, 2), np.nan)
        if update_host is not None:
            rows = [i for i, _ in weights]
            update_norms[rows] = np.sqrt(update_host.reshape(2, len(rows)).T)
        return StepStats(
            step=step,
            counts=counts.reshape(n, 4, BINS),
            scales=scales.reshape(n, 4),
            nan_counts=nan_counts.reshape(n, 4),
            norms=norms.reshape(n, 4),
            update_norms=update_norms,
            activations=self.outputs.table(act_host, dead_host),
        )

    def _collect_host(
        self, step: int, tensors: list[tuple[int, torch.Tensor]], reducer: Reducer | None
    ) -> StepStats:
        """:meth:`_collect` for small CPU models: numpy does the same arithmetic with far less
        per-call overhead, and the small tables are filled from Python numbers."""
        n = len(self.layers)
        # Row r of the passes is quantity r // n of layer r % n: row (r % n) * 4 + r // n of the
        # [layers * 4] tables. The weights come first: the bins' buffer holds them for the
        # update ratio.
        where = [(r % n) * 4 + r // n for r, _ in tensors]
        table, scales_found, squares = self._host_bins([t for _, t in tensors], where, n * 4)
        update_host = self._update_squares_host(self._weight_rows)
        if reducer is None:
            act_host, dead_host = self.outputs.host_parts()
        else:
            parts = self.outputs.device_parts(torch.device("cpu"), reducer)
            act_host, dead_host = [x if x is None else x.numpy() for x in parts]
        scales, norms = [math.nan] * (n * 4), [math.nan] * (n * 4)
        for row, scale, square in zip(where, scales_found, squares, strict=True):
            scales[row] = scale
            norms[row] = math.sqrt(square)
        update_norms = [[math.nan, math.nan] for _ in range(n)]
        if update_host is not None:
            found = update_host.tolist()
            count = len(self._weight_rows)
            for k, (row, _) in enumerate(self._weight_rows):
                update_norms[row] = [math.sqrt(found[k]), math.sqrt(found[count + k])]
        return StepStats(
            step=step,
            counts=table[:, 1 : BINS + 1].reshape(n, 4, BINS),
            scales=np.array(scales).reshape(n, 4),
            nan_counts=table[:, BINS + 2].reshape(n, 4),
            norms=np.array(norms).reshape(n, 4),
            update_norms=np.array(update_norms).reshape(n, 2),
            activations=self.outputs.table(act_host, dead_host),
        )

    def _update_squares(self, weights: list[tuple[int, torch.Tensor]]) -> torch.Tensor | None:
        """Sums of squares of each weight's change since :meth:`arm`, then of the weight then."""
        tensors = [w for _, w in weights]
        kept = self._previous
        previous: list[torch.Tensor] | None
        if isinstance(kept, np.ndarray):  # kept flat; the model moved since
            if not tensors or kept.size != sum(t.numel() for t in tensors):
                return None
            flat = torch.from_numpy(kept).to(tensors[0].device)
            parts = flat.split([t.numel() for t in tensors])
            previous = [p.view_as(t) for p, t in zip(parts, tensors, strict=True)]
        else:
            previous = kept
        if not weights or previous is None or len(previous) != len(weights):
            return None
        if any(p.shape != t.shape for p, t in zip(previous, tensors, strict=True)):
            return None
        changes = list(torch._foreach_sub(tensors, previous))
        if all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors + previous):
            return norm_squares(changes + previous)
        return sum_squares(changes + previous)

    def _update_squares_host(self, weights: list[tuple[int, torch.Tensor]]) -> np.ndarray | None:
        """:meth:`_update_squares` for small CPU models, in float64 sums."""
        previous = self._previous
        if not weights or previous is None:
            return None
        current = self._host_bins.leading(sum(w.numel() for _, w in weights))
        if current is None:
            current = np.concatenate([w.detach().numpy().reshape(-1) for _, w in weights])
        if not isinstance(previous, np.ndarray):
            if len(previous) != len(weights):
                return None
            previous = np.concatenate([p.numpy().reshape(-1) for p in previous])
        if previous.shape != current.shape:
            return None
        starts = self._weight_starts
        changes = np.add.reduceat(np.square(current - previous, dtype=np.float64), starts)
        olds = np.add.reduceat(np.square(previous, dtype=np.float64), starts)
        return np.concatenate([changes, olds])


def _host_sized(tensors: list[torch.Tensor]) -> bool:
    """Whether these tensors are few enough, and CPU float32, to be reduced with numpy."""
    return (
        all(t.is_cpu and t.dtype is torch.float32 for t in tensors)
        and sum(t.numel() for t in tensors) <= HOST_LIMIT
    )
