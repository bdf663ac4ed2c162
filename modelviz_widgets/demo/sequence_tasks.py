"""A small transformer that learns to reverse digit sequences, in a few seconds on a CPU.

Reversal has a known answer for attention: the output at position ``i`` is the input at position
``length - 1 - i``, so a head that solves it attends along the anti-diagonal of the query x key
matrix. That makes it a good first model for :class:`~modelviz_widgets.Attention`.

>>> import modelviz_widgets as mv
>>> model, accuracy = mv.demo.train_reversal(seed=0)
>>> digits, reversed_digits = mv.demo.reversal_batch(4, seed=1)
>>> model(digits).argmax(dim=-1)  # == reversed_digits
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .training import _reproducible

#: Size of the vocabulary: the digits 0-9, each its own token.
DIGITS = 10

#: Defaults of :func:`train_reversal`.
DEFAULT_LENGTH = 10
DEFAULT_STEPS = 400
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 3e-3


class ReversalTransformer(nn.Module):
    """Token and learned position embeddings, an ``nn.TransformerEncoder``, one digit per position.

    Input ``[N, length]`` int64 digits in ``0..9``; output ``[N, length, 10]`` logits. Every
    position sees every other (no causal mask), so position ``i`` may read its answer straight from
    position ``length - 1 - i``. Layer names: ``embed``, ``position``,
    ``encoder.layers.<k>.self_attn`` (an ``nn.MultiheadAttention``), ``head``.

    Parameters
    ----------
    length : int
        Longest sequence the position embedding covers.
    d_model : int
        Width of the token vectors.
    heads : int
        Attention heads per layer; ``d_model`` must be divisible by it.
    layers : int
        Encoder layers.
    """

    def __init__(
        self, length: int = DEFAULT_LENGTH, d_model: int = 32, heads: int = 2, layers: int = 2
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.length = length
        self.embed = nn.Embedding(DIGITS, d_model)
        self.position = nn.Embedding(length, d_model)
        # No dropout: the attention of the trained model is the one it computes at inference.
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, DIGITS)

    def forward(self, digits: torch.Tensor) -> torch.Tensor:
        if digits.dim() != 2 or digits.shape[1] > self.length:
            raise ValueError(
                f"expected int64 digits of shape [N, length <= {self.length}], "
                f"got {list(digits.shape)}"
            )
        positions = torch.arange(digits.shape[1], device=digits.device)
        return self.head(self.encoder(self.embed(digits) + self.position(positions)))


def reversal_batch(
    n: int, length: int = DEFAULT_LENGTH, *, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random digit sequences and their reversals.

    Parameters
    ----------
    n : int
        Sequences in the batch.
    length : int
        Digits per sequence.
    seed : int, optional
        Seed of the draw; without one, torch's global generator is used.

    Returns
    -------
    digits, reversed_digits : torch.Tensor
        Both ``[n, length]`` int64; ``reversed_digits[:, i] == digits[:, length - 1 - i]``.
    """
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    digits = torch.randint(0, DIGITS, (n, length), generator=generator)
    return digits, digits.flip(1)


def train_reversal(
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    *,
    length: int = DEFAULT_LENGTH,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    verbose: bool = False,
) -> tuple[ReversalTransformer, float]:
    """Train a :class:`ReversalTransformer` from scratch, reproducibly.

    Every step draws a fresh batch of random sequences, so there is no training set to memorise.
    The defaults take about 4 s on one CPU thread and reach 100 % per-digit accuracy. As in
    :func:`~modelviz_widgets.demo.train_digits_cnn`, training runs seeded on one thread with
    deterministic kernels, and torch's global RNG, thread count and determinism setting are
    restored afterwards.

    Parameters
    ----------
    steps : int
        Optimizer steps.
    seed : int
        Seed of the initial weights and of every training batch.
    length : int
        Digits per sequence.
    batch_size : int
        Sequences per step.
    lr : float
        Adam learning rate.
    verbose : bool
        Print the loss every 100 steps and the final accuracy.

    Returns
    -------
    model : ReversalTransformer
        The trained model, in eval mode.
    accuracy : float
        Fraction of digits put in the right place on 1,000 new sequences, in ``[0, 1]``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    with _reproducible(seed):
        model = ReversalTransformer(length)
        batches = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for step in range(steps):
            digits = torch.randint(0, DIGITS, (batch_size, length), generator=batches)
            logits = model(digits)
            loss = nn.functional.cross_entropy(logits.reshape(-1, DIGITS), digits.flip(1).ravel())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if verbose and (step + 1) % 100 == 0:
                print(f"step {step + 1}/{steps}: loss {loss.item():.4f}")
        model.eval()
        # New sequences, from a generator of their own.
        digits, reversed_digits = reversal_batch(1000, length, seed=seed + 1_000_003)
        with torch.no_grad():
            accuracy = float((model(digits).argmax(dim=-1) == reversed_digits).float().mean())
    if verbose:
        seconds = time.perf_counter() - started
        print(f"accuracy on new sequences {accuracy:.2%}, {seconds:.1f} s")
    return model, accuracy
