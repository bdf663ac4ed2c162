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
import torch.nn.functional as F
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
            f"found no attention in {type(model).__name__}: looked for nn.MultiheadAttention "
            "modules (as in nn.TransformerEncoderLayer) and for a transformers model (a config "
            "with output_attentions); the model has neither"
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


def attention_rollout(maps: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout: how much each output position draws on each input token, through the
    layers (Abnar and Zuidema, 2020).

    Each layer's heads are averaged, the residual connection is modelled by mixing in the
    identity, ``(1 - residual) * A + residual * I``, rows are renormalised, and the layers are
    multiplied from the input up: ``rollout[l] = Â_l @ ... @ Â_0``.

    Parameters
    ----------
    maps
        Self-attention ``[layers, batch, heads, tokens, tokens]``, as from :func:`attention_maps`.
    residual
        Weight of the identity, between 0 (attention only) and 1.

    Returns
    -------
    torch.Tensor
        ``[layers, batch, tokens, tokens]``; entry ``l`` is the rollout through layer ``l``.
    """
    if maps.dim() != 5 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(
            "rollout needs self-attention [layers, batch, heads, tokens, tokens]; got shape "
            f"{list(maps.shape)}"
        )
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must be between 0 and 1; got {residual}")
    mixed = (1.0 - residual) * maps.mean(dim=2)
    mixed = mixed + residual * torch.eye(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    mixed = mixed / mixed.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
    joint = mixed[0]
    rollout = [joint]
    for layer in mixed[1:]:
        joint = layer @ joint
        rollout.append(joint)
    return torch.stack(rollout)


def kept_positions(maps: torch.Tensor) -> torch.Tensor:
    """Positions of one sample's ``[layers, heads, query, key]`` attention that are real tokens.

    A padded key gets exactly zero attention from every query of every head and layer (the mask
    drives its softmax weight to zero); any other key gets some, however little (or a NaN, which
    is kept and shown as such).
    """
    # Nearly every key gets attention in the first layer already; only the others need a look
    # through the remaining layers.
    kept = (maps[0] != 0).any(dim=0).any(dim=0)
    doubtful = torch.nonzero(~kept).flatten()
    if doubtful.numel():
        kept[doubtful] = (maps[1:, :, :, doubtful] != 0).flatten(0, 2).any(dim=0)
    return torch.nonzero(kept).flatten()


def thumbnails(maps: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
    """``[layers, heads, n, n]`` maps shrunk to at most ``size`` cells a side by a max over
    ``pool`` by ``pool`` blocks (a thin diagonal stays visible); returns them and ``pool``."""
    layers, heads, n, _ = maps.shape
    pool = max(1, -(-n // size))
    if pool == 1:
        return maps, 1
    flat = maps.reshape(layers * heads, 1, n, n)
    pooled = F.max_pool2d(flat, pool, ceil_mode=True)  # a NaN in a block makes the block NaN
    return pooled.reshape(layers, heads, *pooled.shape[-2:]), pool


def strongest_keys(maps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest weights of each query of ``[heads, query, key]`` and their key indices,
    both ``[heads, query, k]``, in descending order."""
    k = max(1, min(k, maps.shape[-1]))
    values, indices = torch.topk(maps.nan_to_num(0.0), k, dim=-1)
    return values, indices
