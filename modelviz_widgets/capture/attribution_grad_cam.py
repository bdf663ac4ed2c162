"""Grad-CAM: a layer's channels weighted by their spatially averaged gradients.

The layer's output is kept by a forward hook that hands the rest of the model a copy, so a later
in-place op (``ReLU(inplace=True)``) cannot overwrite the activation or move the gradient past it;
the gradient is taken with respect to that output alone, so the backward pass stops at the layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attribution_job import Job
from .hooks import dry_run, removing
from .layers import named_layers

# torch.nn.functional.interpolate modes by the number of spatial axes of the map.
INTERPOLATE_MODES: dict[int, tuple[str, ...]] = {
    1: ("nearest", "nearest-exact", "linear", "area"),
    2: ("nearest", "nearest-exact", "bilinear", "bicubic", "area"),
    3: ("nearest", "nearest-exact", "trilinear", "area"),
}


def conv_like_layers(model: nn.Module, inputs: torch.Tensor) -> list[str]:
    """Layers whose output on ``inputs`` is a tensor with channels and space or time axes
    (``[N, C, ...]`` with at least one axis after ``C``): the layers Grad-CAM can use."""
    shapes = dry_run(model, inputs)
    valid = []
    for name, module in named_layers(model).items():  # model order, not the order they ran in
        shape, is_tensor = shapes.get(name, (None, False))
        is_map = is_tensor and shape is not None and len(shape) >= 3
        if is_map and not isinstance(module, nn.modules.dropout._DropoutNd):
            valid.append(name)
    return valid


def _layer_error(job: Job, problem: str) -> ValueError:
    valid = conv_like_layers(job.model, job.inputs)
    return ValueError(
        f"{problem}; grad_cam needs a layer whose output has channels and spatial axes "
        f"[N, C, ...]. Valid layers for these inputs: {', '.join(valid) or '(none)'}"
    )


class _LayerOutput:
    """A forward hook keeping the layer's last output and passing a copy on."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None
        self.shape_problem: str | None = None

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not isinstance(output, torch.Tensor) or output.dim() < 3:
            shape = list(output.shape) if isinstance(output, torch.Tensor) else None
            self.shape_problem = f"returns {type(output).__name__} {shape or ''}".rstrip()
            return None
        if not output.requires_grad:
            # Nothing before this layer has parameters: start the graph here.
            output = output.detach().requires_grad_(True)
        self.output = output
        return output.clone()


def grad_cam(job: Job) -> torch.Tensor:
    layer, options = job.layer, job.options
    if layer is None:
        raise _layer_error(job, "grad_cam needs layer=<name>")
    if not isinstance(layer, str):
        raise TypeError(f"layer names are strings, got {type(layer).__name__}: {layer!r}")
    module = named_layers(job.model).get(layer)
    if module is None:
        raise _layer_error(job, f"unknown layer {layer!r}")
    job.progress.plan(1)
    keeper = _LayerOutput()
    with removing([module.register_forward_hook(keeper)]), torch.enable_grad():
        output = job.forward(job.inputs.clone())
        if keeper.output is None:
            problem = keeper.shape_problem or "did not run in the model's forward"
            raise _layer_error(job, f"layer {layer!r} {problem}")
        activation = keeper.output
        score = job.score(output, job.target)
        (gradient,) = torch.autograd.grad(score, activation, allow_unused=True)
    job.progress.step()
    activation = activation.detach()
    if gradient is None:
        gradient = torch.zeros_like(activation)
    spatial = tuple(range(2, activation.dim()))
    channel_weights = gradient.mean(dim=spatial, keepdim=True)
    cam = (channel_weights * activation).sum(dim=1)
    if options["relu"]:
        cam = F.relu(cam)
    if options["upsample"]:
        cam = _upsample(cam, job.inputs, options["interpolate_mode"], layer)
    return cam


def _upsample(cam: torch.Tensor, inputs: torch.Tensor, mode: str, layer: str) -> torch.Tensor:
    size = tuple(inputs.shape[2:])
    axes = cam.dim() - 1
    if len(size) != axes:
        raise ValueError(
            f"cannot upsample the Grad-CAM map of layer {layer!r} (shape {list(cam.shape[1:])}) "
            f"to inputs of shape {list(inputs.shape)}: they have {len(size)} spatial axes, the "
            f"map {axes}; pass upsample=False"
        )
    modes = INTERPOLATE_MODES.get(axes, ("nearest", "area"))
    if mode not in modes:
        raise ValueError(
            f"interpolate_mode {mode!r} does not apply to a map with {axes} spatial axes; "
            f"valid modes: {', '.join(modes)}"
        )
    return F.interpolate(cam.unsqueeze(1), size=size, mode=mode).squeeze(1)
