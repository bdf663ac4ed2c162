"""Attribution from input gradients: saliency, gradient x input, guided backprop, SmoothGrad and
Integrated Gradients.

Every gradient is taken with ``torch.autograd.grad`` on a fresh leaf, never ``.backward()``, so no
parameter's ``.grad`` is touched. Guided backprop clamps gradients with tensor hooks registered
inside forward hooks on the ``nn.ReLU`` modules (this works with ``ReLU(inplace=True)``); the
forward hooks are removed whatever happens and the tensor hooks die with the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .attribution_job import Job, RowTarget, baseline_like, rows_target
from .hooks import removing

QUADRATURES = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
)


def input_gradients(
    job: Job, batch: torch.Tensor, target: RowTarget, guided: bool = False
) -> torch.Tensor:
    """The gradient of the summed target scores with respect to every row of ``batch``: one
    forward and one backward. In eval mode samples are independent, so each row gets its own."""
    leaf = batch.detach().requires_grad_(True)
    handles = _relu_clamps(job.model) if guided else []
    with removing(handles), torch.enable_grad():
        # The model sees a copy: an in-place op on its input must neither hit a leaf that
        # requires grad nor write into the caller's tensor.
        output = job.forward(leaf.clone())
        score = job.score(output, target)
        if not score.requires_grad:
            raise ValueError(
                "the target score does not depend on the inputs through anything differentiable; "
                "check that the model's forward does not detach or round its inputs"
            )
        (gradient,) = torch.autograd.grad(score, leaf, allow_unused=True)
    return torch.zeros_like(batch) if gradient is None else gradient


def _clamp_negative(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.clamp(min=0)


def _clamp_output_gradient(module: nn.Module, args: Any, output: Any) -> None:
    # Clamping the gradient arriving at the ReLU's output, then letting ReLU's own backward mask
    # it, gives relu(grad) * (x > 0): the guided-backprop rule for the gradient at its input.
    if isinstance(output, torch.Tensor) and output.requires_grad:
        output.register_hook(_clamp_negative)


def _relu_clamps(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    return [
        module.register_forward_hook(_clamp_output_gradient)
        for module in model.modules()
        if isinstance(module, nn.ReLU)
    ]


def saliency(job: Job) -> torch.Tensor:
    job.progress.plan(1)
    gradient = input_gradients(job, job.inputs, job.target)
    job.progress.step()
    return gradient.abs() if job.options["abs"] else gradient


def grad_x_input(job: Job) -> torch.Tensor:
    job.progress.plan(1)
    gradient = input_gradients(job, job.inputs, job.target)
    job.progress.step()
    return gradient * job.inputs


def guided_backprop(job: Job) -> torch.Tensor:
    job.progress.plan(1)
    gradient = input_gradients(job, job.inputs, job.target, guided=True)
    job.progress.step()
    return gradient


# Without internal_batch_size, one forward takes at most this many input elements (a 3x224x224
# image: 111 copies), so a large batch is split into chunks instead of exhausting memory.
AUTO_CHUNK_ELEMENTS = 2**24


def _copies_per_chunk(internal_batch_size: int | None, inputs: torch.Tensor, copies: int) -> int:
    """How many copies of every sample one forward takes: captum's internal batching rule (rows
    per forward rounded down to a multiple of the batch, at least one copy), or, without
    ``internal_batch_size``, all copies unless that exceeds :data:`AUTO_CHUNK_ELEMENTS`."""
    n_samples = inputs.shape[0]
    if internal_batch_size is None:
        internal_batch_size = max(1, AUTO_CHUNK_ELEMENTS // max(1, inputs[0].numel()))
    return max(1, min(copies, internal_batch_size // n_samples))


def smoothgrad(job: Job) -> torch.Tensor:
    """The mean gradient (or mean absolute gradient, ``abs=True``) over noisy copies of each
    input. Noise draws are sample-major, ``[N * copies, ...]`` per chunk, from a generator seeded
    with ``seed`` (or the global generator for ``seed=None``)."""
    x, options = job.inputs, job.options
    n = x.shape[0]
    n_samples = options["n_samples"]
    per_chunk = _copies_per_chunk(options["internal_batch_size"], x, n_samples)
    job.progress.plan(-(-n_samples // per_chunk))
    sigma = _noise_sigma(x, options["noise"], options["stdev"])
    generator = None
    if options["seed"] is not None:
        generator = torch.Generator(device=x.device).manual_seed(options["seed"])
    target = job.resolved_target()
    total = torch.zeros_like(x)
    done = 0
    while done < n_samples:
        copies = min(per_chunk, n_samples - done)
        rows = x.repeat_interleave(copies, dim=0)
        noise = torch.randn(rows.shape, generator=generator, dtype=x.dtype, device=x.device)
        noise *= sigma.repeat_interleave(copies, dim=0)
        gradient = input_gradients(job, rows + noise, rows_target(target, copies, True))
        if options["abs"]:
            gradient = gradient.abs()
        total += gradient.reshape(n, copies, *x.shape[1:]).sum(dim=1)
        done += copies
        job.progress.step()
    return total / n_samples


def _noise_sigma(x: torch.Tensor, noise: float, stdev: float | None) -> torch.Tensor:
    """Noise standard deviation per sample, shaped to broadcast over it: ``stdev`` as given, or
    ``noise`` times the sample's value range (max - min)."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    if stdev is not None:
        return torch.full(shape, float(stdev), dtype=x.dtype, device=x.device)
    flat = x.reshape(x.shape[0], -1)
    value_range = flat.amax(dim=1) - flat.amin(dim=1)
    return (noise * value_range).reshape(shape)


def quadrature(rule: str, steps: int) -> tuple[list[float], list[float]]:
    """Points ``alpha`` in [0, 1] along the path and their weights, for ``steps`` points.

    ``gausslegendre`` (captum's default) is exact for polynomials of degree ``2 * steps - 1``;
    the Riemann rules are the textbook ones.
    """
    if rule == "gausslegendre":
        nodes, node_weights = np.polynomial.legendre.leggauss(steps)
        return (0.5 * (nodes + 1)).tolist(), (0.5 * node_weights).tolist()
    if steps < 2:
        raise ValueError(f"the {rule} rule needs steps >= 2, got {steps}")
    if rule == "riemann_trapezoid":
        trapezoid = [1 / steps] * steps
        trapezoid[0] /= 2
        trapezoid[-1] /= 2
        return np.linspace(0, 1, steps).tolist(), trapezoid
    starts = {
        "riemann_left": (0.0, 1 - 1 / steps),
        "riemann_right": (1 / steps, 1.0),
        "riemann_middle": (1 / (2 * steps), 1 - 1 / (2 * steps)),
    }
    low, high = starts[rule]
    return np.linspace(low, high, steps).tolist(), [1 / steps] * steps


def integrated_gradients(job: Job) -> torch.Tensor:
    """``(x - baseline) * sum_k w_k grad f(baseline + alpha_k (x - baseline))``; the points of a
    chunk are stacked step-major, ``[alpha_0: all samples, alpha_1: all samples, ...]``."""
    x, options = job.inputs, job.options
    n = x.shape[0]
    steps = options["steps"]
    alphas, weights = quadrature(options["quadrature"], steps)
    per_chunk = _copies_per_chunk(options["internal_batch_size"], x, steps)
    job.progress.plan(-(-steps // per_chunk))
    baseline = baseline_like(options["baseline"], x)
    delta = x - baseline
    target = job.resolved_target()
    total = torch.zeros(x[0].numel() * n, dtype=x.dtype, device=x.device)
    spread = (-1,) + (1,) * x.dim()
    for start in range(0, steps, per_chunk):
        stop = min(start + per_chunk, steps)
        alpha = torch.tensor(alphas[start:stop], dtype=x.dtype, device=x.device).view(spread)
        rows = (baseline + alpha * delta).reshape(-1, *x.shape[1:])
        gradient = input_gradients(job, rows, rows_target(target, stop - start, False))
        weight = torch.tensor(weights[start:stop], dtype=x.dtype, device=x.device)
        # The weighted sum over the chunk's steps as one matrix-vector product.
        # reshape, not view: the gradient keeps the input's layout (channels-last, permuted).
        total += weight @ gradient.reshape(stop - start, -1)
        job.progress.step()
    return total.view_as(x) * delta


METHODS: dict[str, Callable[[Job], torch.Tensor]] = {
    "saliency": saliency,
    "grad_x_input": grad_x_input,
    "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients,
    "guided_backprop": guided_backprop,
}
