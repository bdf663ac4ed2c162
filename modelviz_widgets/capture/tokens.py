"""Which tokens matter: attribution on the embedding layer, reduced to one number per token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .attribution_gradients import quadrature
from .hooks import Target, output_logits, removing, target_score, visual_mode
from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model, named_layers

TOKEN_METHODS = ("gradient", "integrated_gradients")


def resolve_embedding(model: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    """The embedding layer by name, or the first ``nn.Embedding``; errors name the valid ones."""
    layers = named_layers(model)
    embeddings = {name: m for name, m in layers.items() if isinstance(m, nn.Embedding)}
    if layer is None:
        if not embeddings:
            raise ValueError(
                "the model has no nn.Embedding layer; pass layer= the name of the layer whose "
                "output holds one vector per token"
            )
        return next(iter(embeddings.items()))
    if layer not in layers:
        valid = ", ".join(embeddings) or "(no nn.Embedding layer)"
        raise ValueError(f"unknown layer {layer!r}; the model's embedding layers are: {valid}")
    return layer, layers[layer]


class _Substitute:
    """A forward hook that records the layer's output, then hands the model a replacement."""

    def __init__(self) -> None:
        self.make: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.original: torch.Tensor | None = None
        self.used: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.dim() != 3:
            raise ValueError(
                f"the embedding layer must output [batch, time, features]; got "
                f"{getattr(output, 'shape', type(output).__name__)}"
            )
        if self.used is not None:
            raise ValueError(
                "the embedding layer ran more than once in one forward (a shared embedding?); "
                "token attribution needs it to embed the tokens once; pass layer= the name of an "
                "embedding used once"
            )
        self.original = output.detach()
        assert self.make is not None
        self.used = self.make(self.original)
        return self.used


def token_attribution(
    model: nn.Module,
    inputs: Any,
    target: Target | Callable[[Any], torch.Tensor] = None,
    method: str = "gradient",
    layer: str | None = None,
    *,
    steps: int = 50,
    baseline_token: int = 0,
) -> torch.Tensor:
    """One attribution number per token, from the model's embedding layer.

    Parameters
    ----------
    model
        A model with an embedding layer (by default its first ``nn.Embedding``); left unchanged.
    inputs
        The model's inputs: token ids ``[batch, time]``, or a tuple of arguments / dict of keyword
        arguments holding them (e.g. ``(tokens, lengths)``).
    target
        A class index, one per sample, a callable on the output returning a scalar, or ``None``
        for each sample's predicted class.
    method
        ``"gradient"``: the L2 norm over features of d(target)/d(embedding), unsigned.
        ``"integrated_gradients"``: integrated gradients on the embedding output, from the
        embedding of ``baseline_token`` to the real one (Gauss-Legendre, ``steps`` points), summed
        over features: signed, and the tokens' values add up to f(x) - f(baseline).
    layer
        Name of the embedding layer.

    Returns
    -------
    torch.Tensor
        ``[batch, time]``, detached.
    """
    check_model(model)
    if method not in TOKEN_METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {list(TOKEN_METHODS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    name, module = resolve_embedding(model, layer)
    inputs = move_to_device(inputs, model_device(model))
    substitute = _Substitute()
    # visual_mode first: it holds the model's lock, so no other thread's forward sees this hook.
    with (
        visual_mode(model),
        removing([module.register_forward_hook(substitute)]),
        torch.enable_grad(),
    ):
        try:
            if method == "gradient":
                substitute.make = lambda original: original.clone().requires_grad_(True)
                gradient = _gradient(model, inputs, target, substitute, name)
                return gradient.norm(dim=-1).detach()
            return _integrated(model, inputs, target, substitute, name, steps, baseline_token)
        except (RuntimeError, IndexError) as error:
            raise input_error(model, inputs, error) from error


def _gradient(
    model: nn.Module, inputs: Any, target: Any, substitute: _Substitute, name: str
) -> torch.Tensor:
    substitute.used = None
    output = call_model(model, inputs)
    if substitute.used is None:
        raise ValueError(f"the embedding layer {name!r} did not run during the forward pass")
    score = target_score(output, target)
    (gradient,) = torch.autograd.grad(score, substitute.used)
    return gradient


def _integrated(
    model: nn.Module,
    inputs: Any,
    target: Any,
    substitute: _Substitute,
    name: str,
    steps: int,
    baseline_token: int,
) -> torch.Tensor:
    layer = named_layers(model)[name]
    alphas, weights = quadrature("gausslegendre", steps)
    if target is None:
        # The predicted class of the real input, so that every point of the path scores it.
        substitute.make = lambda original: original
        with torch.no_grad():
            logits = output_logits(call_model(model, inputs))
        substitute.used = None
        target = logits.reshape(logits.shape[0], -1).argmax(dim=1)
    total: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    for alpha, weight in zip(alphas, weights, strict=True):

        def interpolate(original: torch.Tensor, alpha: float = alpha) -> torch.Tensor:
            base = _baseline_embedding(layer, original, baseline_token)
            return (base + alpha * (original - base)).requires_grad_(True)

        substitute.make = interpolate
        gradient = _gradient(model, inputs, target, substitute, name)
        if total is None:
            assert substitute.original is not None
            total = torch.zeros_like(gradient)
            delta = substitute.original - _baseline_embedding(
                layer, substitute.original, baseline_token
            )
        total += weight * gradient
    assert total is not None and delta is not None
    return (total * delta).sum(dim=-1).detach()


def _baseline_embedding(layer: nn.Module, original: torch.Tensor, token: int) -> torch.Tensor:
    """The embedding of ``token`` at every position (what a sequence of that token would give).

    Read from the weight table, not by calling the layer, whose output the hook replaces."""
    if isinstance(layer, nn.Embedding):
        if not 0 <= token < layer.num_embeddings:
            raise ValueError(
                f"baseline_token {token} is out of range; valid ids are "
                f"0..{layer.num_embeddings - 1}"
            )
        return layer.weight[token].detach().to(original.dtype).expand_as(original)
    return torch.zeros_like(original)
