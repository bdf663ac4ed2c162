"""Sequence inputs of the recurrent views: tokens, lengths of padded batches, per-step outputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..capture.hooks import output_logits
from ..capture.recurrent import recurrent_layers


def final_step_logits(output: Any) -> torch.Tensor:
    """``[batch, classes]`` scores (of the last step, for a per-step ``[batch, time, classes]``)."""
    logits = output_logits(output)
    if logits.dim() == 3:
        logits = logits[:, -1]
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)
    return logits.reshape(logits.shape[0], -1)


def normalize_tokens(tokens: Any, batch: int, time: int, lengths: torch.Tensor) -> list[list[str]]:
    """Tokens as one list of strings per sequence, each as long as its sequence."""
    if tokens is None:
        return []
    tokens = list(tokens)
    if tokens and all(isinstance(token, str) for token in tokens):
        tokens = [tokens]
    if len(tokens) != batch:
        raise ValueError(f"got tokens for {len(tokens)} sequences, but the batch has {batch}")
    result = []
    for index, row in enumerate(tokens):
        if isinstance(row, str) or not all(isinstance(token, str) for token in row):
            raise TypeError("tokens must be a list of strings, or one such list per sequence")
        length = int(lengths[index])
        if len(row) not in (length, time):
            raise ValueError(
                f"sequence {index} has {len(row)} tokens but {length} steps; pass one token per "
                "step"
            )
        result.append([str(token) for token in row])
    return result


def check_lengths(lengths: torch.Tensor, sequences: Any) -> None:
    """Lengths of a padded batch: one per sequence, each between 1 and the padded length."""
    if not isinstance(sequences, torch.Tensor) or sequences.dim() < 2:
        raise ValueError("with lengths=, inputs must be a padded batch [batch, time, ...]")
    batch, time = int(sequences.shape[0]), int(sequences.shape[1])
    if lengths.dim() != 1 or lengths.numel() != batch or lengths.is_floating_point():
        raise ValueError(
            f"lengths must be {batch} integers, one per sequence; got shape {list(lengths.shape)}"
        )
    if bool((lengths < 1).any()) or bool((lengths > time).any()):
        raise ValueError(f"every length must be between 1 and the padded length {time}")


def with_lengths(inputs: Any, lengths: Any) -> Any:
    """The model's inputs, as ``(sequences, lengths)`` when lengths of a padded batch are given."""
    if lengths is None:
        return inputs
    if isinstance(inputs, (tuple, list, dict)):
        raise TypeError("pass lengths= with a tensor of sequences, not a tuple of inputs")
    lengths = torch.as_tensor(lengths)
    check_lengths(lengths, inputs)
    return (inputs, lengths)


def recurrent_layer_options(model: nn.Module) -> list[dict[str, Any]]:
    """The layer picker's entries: every recurrent layer with its type and sizes."""
    modules = recurrent_layers(model)
    if not modules:
        raise ValueError("the model has no nn.RNN, nn.LSTM or nn.GRU layer")
    return [
        {
            "name": name,
            "module_type": type(module).__name__,
            "num_layers": module.num_layers,
            "bidirectional": module.bidirectional,
            "hidden_size": module.hidden_size,
        }
        for name, module in modules.items()
    ]
