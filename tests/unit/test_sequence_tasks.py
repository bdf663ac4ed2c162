"""The reversal transformer of mv.demo: it learns the task, and its attention is anti-diagonal."""

from __future__ import annotations

import time

import pytest
import torch

from modelviz_widgets import demo
from modelviz_widgets.capture.attention import attention_maps

LENGTH = 10
ANTI_DIAGONAL = torch.eye(LENGTH).flip(1).bool()


@pytest.fixture(scope="module")
def trained() -> tuple[demo.ReversalTransformer, float, float]:
    started = time.perf_counter()
    model, accuracy = demo.train_reversal(seed=0)
    return model, accuracy, time.perf_counter() - started


def first_layer_attention(model: demo.ReversalTransformer, digits: torch.Tensor) -> torch.Tensor:
    """Per-head weights of layer 0, recomputed by calling its attention module by hand."""
    positions = torch.arange(digits.shape[1])
    tokens = model.embed(digits) + model.position(positions)
    attention = model.encoder.layers[0].self_attn
    with torch.no_grad():
        _, weights = attention(
            tokens, tokens, tokens, need_weights=True, average_attn_weights=False
        )
    return weights  # [batch, heads, query, key]


def test_reversal_batch_is_the_reversed_digits() -> None:
    digits, reversed_digits = demo.reversal_batch(5, 7, seed=3)
    assert digits.shape == (5, 7) and digits.dtype == torch.int64
    assert int(digits.min()) >= 0 and int(digits.max()) <= 9
    for row, flipped in zip(digits.tolist(), reversed_digits.tolist(), strict=True):
        assert flipped == row[::-1]
    assert torch.equal(demo.reversal_batch(5, 7, seed=3)[0], digits)


def test_trained_model_reverses_new_sequences(trained) -> None:
    model, accuracy, seconds = trained
    print(f"train_reversal(): accuracy {accuracy:.4f} in {seconds:.1f} s")
    digits = torch.randint(0, 10, (500, LENGTH), generator=torch.Generator().manual_seed(12345))
    with torch.no_grad():
        predicted = model(digits).argmax(dim=-1)
    expected = torch.stack([digits[:, LENGTH - 1 - i] for i in range(LENGTH)], dim=1)
    measured = (predicted == expected).float().mean().item()
    assert measured >= 0.95
    assert accuracy >= 0.95
    assert abs(accuracy - measured) < 0.02
    assert not model.training


def test_a_first_layer_head_attends_on_the_anti_diagonal(trained) -> None:
    model, _, _ = trained
    digits, _ = demo.reversal_batch(64, LENGTH, seed=7)
    weights = first_layer_attention(model, digits)
    mass = (weights * ANTI_DIAGONAL).sum(dim=(-1, -2)).mean(dim=0) / LENGTH  # per head
    assert mass.max() >= 0.8, mass
    # An untrained model spreads its attention: about 1 / LENGTH of it on any one key.
    untrained = first_layer_attention(demo.ReversalTransformer(LENGTH).eval(), digits)
    assert (untrained * ANTI_DIAGONAL).sum(dim=(-1, -2)).mean() / LENGTH < 0.3
    # attention_maps sees the same weights.
    maps = attention_maps(model, digits)
    assert maps.shape == (2, 64, 2, LENGTH, LENGTH)
    assert (maps[0] - weights).abs().max() <= 1e-6


def test_training_is_reproducible_and_leaves_global_state_alone() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(42)
    expected_draw = torch.rand(3)
    torch.manual_seed(42)
    first, first_accuracy = demo.train_reversal(steps=5, seed=1)
    assert torch.equal(torch.rand(3), expected_draw)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()
    second, second_accuracy = demo.train_reversal(steps=5, seed=1)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    assert first_accuracy == second_accuracy
    third, _ = demo.train_reversal(steps=5, seed=2)
    assert not torch.equal(third.head.weight, first.head.weight)


def test_bad_arguments_say_what_is_valid() -> None:
    with pytest.raises(ValueError, match="steps must be >= 0"):
        demo.train_reversal(steps=-1)
    with pytest.raises(ValueError, match="divisible"):
        demo.ReversalTransformer(d_model=30, heads=4)
    with pytest.raises(ValueError, match=r"length <= 10"):
        demo.ReversalTransformer(10)(torch.zeros(1, 11, dtype=torch.long))
