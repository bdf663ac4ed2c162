"""Calling a model on user inputs, and saying clearly what input it expects when a call fails."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


class InputShapeError(ValueError):
    """The model could not run on the given inputs; the message names the expected shape."""


def model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _tensors(inputs: Any) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, PackedSequence):
        return [inputs.data]
    if isinstance(inputs, (tuple, list)):
        return [tensor for item in inputs for tensor in _tensors(item)]
    if isinstance(inputs, dict):
        return [tensor for item in inputs.values() for tensor in _tensors(item)]
    return []


def check_not_empty(inputs: Any) -> None:
    """Refuse inputs that hold an empty tensor (a batch of 0 samples, an axis of length 0): the
    model's own error about it is obscure, and a view of nothing would explain nothing."""
    for tensor in _tensors(inputs):
        if tensor.numel() == 0:
            raise InputShapeError(
                f"the inputs are empty: a tensor of shape {list(tensor.shape)} has no elements; "
                "pass at least one sample, with every axis at least 1 long"
            )


def move_to_device(inputs: Any, device: torch.device) -> Any:
    """``inputs`` on ``device`` (after :func:`check_not_empty`: every model input passes here)."""
    check_not_empty(inputs)
    return _move(inputs, device)


def _move(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, PackedSequence):
        # PackedSequence.to forwards to Tensor.to; its annotations only admit a dtype.
        return inputs.to(device)  # type: ignore[arg-type]
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_move(item, device) for item in inputs)
    if isinstance(inputs, dict):
        return {key: _move(item, device) for key, item in inputs.items()}
    return inputs


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)``; a tuple/list is passed as positional arguments, a dict as keywords.

    A ``PackedSequence`` is a tuple too, but it is one argument."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)) and not isinstance(inputs, PackedSequence):
        return model(*inputs)
    return model(inputs)


def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first module, in definition order, that fixes the input's shape."""
    shape_setting = (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding, nn.EmbeddingBag, nn.RNNBase)
    for name, module in model.named_modules():
        if isinstance(module, shape_setting):
            return name, module
    return None


def expected_input(model: nn.Module) -> tuple[int | None, str] | None:
    """``(ndim, description)`` of the batched input the model's first layer takes, if known.

    ``ndim`` is ``None`` when the first layer does not fix it (a Linear layer may follow a Flatten).
    """
    found = first_layer(model)
    if found is None:
        return None
    name, module = found
    where = f"its first layer {name!r} ({type(module).__name__})"
    if isinstance(module, nn.modules.conv._ConvNd):
        spatial = {1: "L", 2: "H, W", 3: "D, H, W"}[len(module.kernel_size)]
        channels = module.in_channels
        ndim = 2 + len(module.kernel_size)
        return ndim, f"{where} expects [N, {channels}, {spatial}] (or [{channels}, {spatial}])"
    if isinstance(module, nn.Linear):
        return None, f"{where} expects [N, {module.in_features}] features (after any flattening)"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return 2, (f"{where} expects integer token ids [N, T], each below {module.num_embeddings}")
    assert isinstance(module, nn.RNNBase)
    order = "[N, T, " if module.batch_first else "[T, N, "
    return 3, f"{where} expects {order}{module.input_size}]"


def shape_of(inputs: Any) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"{list(inputs.shape)} ({str(inputs.dtype).removeprefix('torch.')})"
    if isinstance(inputs, (tuple, list)):
        return "(" + ", ".join(shape_of(item) for item in inputs) + ")"
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{key}: {shape_of(item)}" for key, item in inputs.items()) + "}"
    return type(inputs).__name__


def input_error(model: nn.Module, inputs: Any, error: Exception) -> Exception:
    """Wrap a failure of the model's own forward in an error that names the expected input."""
    expected = expected_input(model)
    hint = f"; {expected[1]}" if expected else ""
    return InputShapeError(
        f"the model failed on inputs of shape {shape_of(inputs)}{hint}. The model said: {error}"
    )


def as_batch(model: nn.Module, inputs: Any) -> torch.Tensor:
    """A single input tensor as a batch: ``[C, H, W]`` becomes ``[1, C, H, W]`` for a 2-D conv net.

    The shape is checked against the model's first layer so a wrong shape fails here, with the
    expected shape in the message, rather than deep inside the forward.
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    check_not_empty(inputs)
    expected = expected_input(model)
    if expected is None:
        return inputs if inputs.dim() > 1 else inputs.unsqueeze(0)
    ndim, description = expected
    if ndim is None:
        return inputs if inputs.dim() > 1 else inputs.unsqueeze(0)
    if inputs.dim() == ndim - 1:
        inputs = inputs.unsqueeze(0)
    if inputs.dim() != ndim:
        raise InputShapeError(f"inputs have shape {list(inputs.shape)}, but {description}")
    found = first_layer(model)
    assert found is not None
    module = found[1]
    if isinstance(module, nn.modules.conv._ConvNd) and inputs.shape[1] != module.in_channels:
        raise InputShapeError(
            f"inputs have {inputs.shape[1]} channels (shape {list(inputs.shape)}), "
            f"but {description}"
        )
    return inputs
