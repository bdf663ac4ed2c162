"""Attention probabilities of every layer and head, from the model as it is.

Two families: Hugging Face transformers models, asked for ``output_attentions`` with the eager
attention implementation (the fused kernels never form the weights); and plain torch models built
from ``nn.MultiheadAttention`` (``nn.TransformerEncoderLayer`` and friends), whose attention modules
are made to return per-head weights by a hook on their arguments, for the length of one forward.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .hooks import model_lock, removing, visual_mode
from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model

_MHA_PARAMETERS = list(inspect.signature(nn.MultiheadAttention.forward).parameters)[1:]


def is_hugging_face(model: nn.Module) -> bool:
    """A transformers ``PreTrainedModel`` (duck-typed: the core never imports transformers)."""
    config = getattr(model, "config", None)
    return config is not None and hasattr(config, "output_attentions")


def attention_modules(model: nn.Module) -> dict[str, nn.MultiheadAttention]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
    }


def attention_maps(model: nn.Module, inputs: Any = None, **model_kwargs: Any) -> torch.Tensor:
    """Attention probabilities ``[layers, batch, heads, query, key]``.

    Parameters
    ----------
    model
        A Hugging Face transformers model, or any torch model using ``nn.MultiheadAttention``.
        It is left as it was (eval mode during the forward, every flag restored).
    inputs
        Positional input(s) of the model (a tensor, or a tuple of arguments); for Hugging Face
        models usually omitted in favour of keyword arguments.
    **model_kwargs
        Keyword arguments of the model's forward, e.g. ``input_ids=..., attention_mask=...`` or
        ``src_key_padding_mask=...``. Padded keys get zero attention, as the model computes it.

    Returns
    -------
    torch.Tensor
        Layers in the order they ran; detached.
    """
    check_model(model)
    device = model_device(model)
    inputs = move_to_device(inputs, device)
    model_kwargs = move_to_device(model_kwargs, device)
    if is_hugging_face(model):
        maps = _hugging_face(model, inputs, model_kwargs)
    else:
        maps = _torch_attention(model, inputs, model_kwargs)
    shapes = {tuple(m.shape) for m in maps}
    if len(shapes) > 1:
        raise ValueError(
            f"the attention layers have different shapes {sorted(shapes)} (cross-attention?); "
            "they cannot be stacked into one [layers, batch, heads, query, key] tensor"
        )
    return torch.stack(maps).detach()


def _hugging_face(model: nn.Module, inputs: Any, kwargs: dict[str, Any]) -> list[torch.Tensor]:
    with visual_mode(model), _eager_attention(model), torch.no_grad():
        arguments = () if inputs is None else inputs
        output = call_model(model, arguments) if kwargs == {} else _call(model, arguments, kwargs)
    attentions = getattr(output, "attentions", None)
    if not attentions:
        raise ValueError(
            "the model returned no attentions with output_attentions=True; is it a transformers "
            "model with self-attention?"
        )
    return list(attentions)


def _call(model: nn.Module, inputs: Any, kwargs: dict[str, Any]) -> Any:
    kwargs = {**kwargs, "output_attentions": True}
    if isinstance(inputs, (tuple, list)):
        return model(*inputs, **kwargs)
    return model(inputs, **kwargs)


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Use transformers' eager attention for one forward (SDPA and flash attention never form the
    probabilities), and ask for them; the previous settings come back after."""
    # transformers configs, duck-typed (the core never imports transformers).
    configs: list[Any] = [
        m.config for m in model.modules() if hasattr(getattr(m, "config", None), "__dict__")
    ]
    saved = [
        (c, c.__dict__.get("_attn_implementation_internal"), c.output_attentions) for c in configs
    ]
    try:
        for config in configs:
            if "_attn_implementation_internal" in config.__dict__:
                config._attn_implementation_internal = "eager"
            config.output_attentions = True
        yield
    finally:
        for config, implementation, output_attentions in saved:
            if "_attn_implementation_internal" in config.__dict__:
                config._attn_implementation_internal = implementation
            config.output_attentions = output_attentions


def _torch_attention(model: nn.Module, inputs: Any, kwargs: dict[str, Any]) -> list[torch.Tensor]:
    modules = attention_modules(model)
    if not modules:
        raise ValueError(
            "the model has no nn.MultiheadAttention layer and is not a transformers model"
        )
    recorded: list[torch.Tensor] = []

    def ask_for_weights(module: nn.Module, args: tuple, call_kwargs: dict) -> tuple:
        bound = dict(zip(_MHA_PARAMETERS, args, strict=False))
        bound.update(call_kwargs)
        bound["need_weights"] = True
        bound["average_attn_weights"] = False
        query, key, value = (bound.pop(name) for name in ("query", "key", "value"))
        return (query, key, value), bound

    def keep_weights(module: nn.Module, args: tuple, call_kwargs: dict, output: Any) -> None:
        weights = output[1]
        recorded.append(weights.unsqueeze(0) if weights.dim() == 3 else weights)

    with model_lock(model), visual_mode(model), _no_nested_tensors(model), torch.no_grad():
        handles = []
        for module in modules.values():
            handles.append(module.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(keep_weights, with_kwargs=True))
        with removing(handles):
            try:
                arguments = () if inputs is None else inputs
                if kwargs:
                    arguments = arguments if isinstance(arguments, (tuple, list)) else (arguments,)
                    model(*arguments, **kwargs)
                else:
                    call_model(model, arguments)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
    if not recorded:
        raise ValueError("no nn.MultiheadAttention layer ran during the forward pass")
    return recorded


@contextlib.contextmanager
def _no_nested_tensors(model: nn.Module) -> Iterator[None]:
    """``nn.TransformerEncoder`` turns padded batches into nested tensors in eval mode, a path
    that never calls the attention modules' forward; it is switched off for one forward."""
    encoders = [m for m in model.modules() if isinstance(m, nn.TransformerEncoder)]
    saved = [
        (m, "use_nested_tensor" in m.__dict__, m.__dict__.get("use_nested_tensor"))
        for m in encoders
    ]
    try:
        for encoder in encoders:
            encoder.__dict__["use_nested_tensor"] = False
        yield
    finally:
        for encoder, present, value in saved:
            if present:
                encoder.__dict__["use_nested_tensor"] = value
            else:
                encoder.__dict__.pop("use_nested_tensor", None)
