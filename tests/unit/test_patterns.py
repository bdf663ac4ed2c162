"""The LSTMVis-style pattern search against hand computations and a brute-force loop."""

from __future__ import annotations

import itertools

import pytest
import torch

from modelviz_widgets.capture.patterns import (
    pattern_mask,
    pattern_runs,
    pattern_scores,
    pattern_units,
)

# One sequence of 5 steps, 4 units; written out so the answers can be read off by eye.
#           step:  0    1    2    3    4
HAND = torch.tensor(
    [
        [
            [0.1, 0.9, 0.9, 0.0],  # 0
            [0.8, 0.9, 0.2, 0.0],  # 1
            [0.7, 0.9, 0.6, 0.5],  # 2
            [0.2, 0.1, 0.9, 0.0],  # 3
            [0.1, 0.9, 0.1, 0.0],  # 4
        ],
        [
            [0.6, 0.0, 0.0, 0.9],
            [0.6, 0.0, 0.7, 0.9],
            [0.0, 0.0, 0.7, 0.9],
            [0.9, 0.9, 0.0, 0.0],
            [0.9, 0.9, 0.0, 0.0],
        ],
    ]
)


def test_units_on_inside_and_off_outside_by_hand():
    # Range [1, 2] of sequence 0 at threshold 0.5: unit 0 is 0.8, 0.7 inside and 0.1, 0.2, 0.1
    # outside -> match. Unit 1 is on outside too (0.9 at step 0). Unit 2 is 0.2 at step 1 -> off
    # inside. Unit 3 is 0.0 at step 1 -> off inside.
    assert pattern_units(HAND, 0, 1, 2, 0.5).tolist() == [0]
    # Range [2, 3] at 0.6: unit 2 is on inside (0.6, 0.9) but also at step 0 (0.9): no match.
    # Range [2, 2]: unit 3 is on there only (0.5); at 0.95 nothing is on at step 2.
    assert pattern_units(HAND, 0, 2, 3, 0.6).tolist() == []
    assert pattern_units(HAND, 0, 2, 2, 0.5).tolist() == [3]
    assert pattern_units(HAND, 0, 2, 2, 0.95).tolist() == []
    # Sequence 1, range [0, 2]: unit 3 (0.9, 0.9, 0.9 then 0, 0); unit 0 is 0.0 at step 2.
    assert pattern_units(HAND, 1, 0, 2, 0.5).tolist() == [3]
    # Range [3, 4]: units 0 (0.6 at steps 0, 1 -> on outside: no) and 1 (off at 0..2: yes).
    assert pattern_units(HAND, 1, 3, 4, 0.5).tolist() == [1]


def test_threshold_equal_counts_as_on():
    states = torch.tensor([[[0.5], [0.4]]])
    assert pattern_units(states, 0, 0, 0, 0.5).tolist() == [0]
    assert pattern_units(states, 0, 0, 0, 0.50001).tolist() == []


def test_margin_limits_the_off_steps():
    # Sequence 1, range [3, 4] for unit 0: on at steps 0 and 1, off at step 2 only.
    assert 0 not in pattern_units(HAND, 1, 3, 4, 0.5).tolist()
    assert pattern_units(HAND, 1, 3, 4, 0.5, margin=1).tolist() == [0, 1]
    assert pattern_units(HAND, 1, 3, 4, 0.5, margin=2).tolist() == [1]


def test_padded_steps_are_neither_on_nor_off():
    # Sequence 1 has only 3 valid steps: the padding (on for units 0, 1) is ignored.
    lengths = torch.tensor([5, 3])
    assert pattern_units(HAND, 1, 0, 1, 0.5, lengths).tolist() == [0]
    with pytest.raises(ValueError, match=r"end < 3"):
        pattern_units(HAND, 1, 0, 3, 0.5, lengths)


def test_scores_and_mask_by_hand():
    scores = pattern_scores(HAND, [0, 3], 0.5)
    expected = torch.tensor(
        [[0.0, 0.5, 1.0, 0.0, 0.0], [1.0, 1.0, 0.5, 0.5, 0.5]],
    )
    torch.testing.assert_close(scores, expected)
    mask = pattern_mask(HAND, [0, 3], 0.5)
    assert mask.tolist() == [
        [False, False, True, False, False],
        [True, True, False, False, False],
    ]
    assert pattern_runs(mask) == [(0, 2, 2), (1, 0, 1)]
    lengths = torch.tensor([5, 1])
    assert pattern_scores(HAND, [0, 3], 0.5, lengths)[1].tolist() == [1.0, 0, 0, 0, 0]
    assert pattern_mask(HAND, [], 0.5).sum() == 0
    assert pattern_scores(HAND, [], 0.5).sum() == 0


def test_runs_reach_the_end():
    mask = torch.tensor([[True, True, False, True], [False, False, False, False]])
    assert pattern_runs(mask) == [(0, 0, 1), (0, 3, 3)]


def brute_force_units(states, sample, start, end, threshold):
    found = []
    for unit in range(states.shape[2]):
        good = True
        for step in range(states.shape[1]):
            value = float(states[sample, step, unit])
            if start <= step <= end and not value >= threshold:
                good = False
            if not start <= step <= end and value >= threshold:
                good = False
        if good:
            found.append(unit)
    return found


def test_random_states_match_a_brute_force_loop():
    generator = torch.Generator().manual_seed(0)
    # Coarse values make ties with the threshold and matches frequent.
    states = torch.randint(0, 4, (3, 6, 40), generator=generator).float() / 4
    for sample, start, end, threshold in itertools.product(
        range(3), range(6), range(6), (0.25, 0.5, 0.75)
    ):
        if end < start:
            continue
        ours = pattern_units(states, sample, start, end, threshold).tolist()
        assert ours == brute_force_units(states, sample, start, end, threshold)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\[batch, time, units\]"):
        pattern_units(torch.zeros(3, 4), 0, 0, 0, 0.5)
    with pytest.raises(ValueError, match=r"sample 2 is out of range; valid samples are 0..1"):
        pattern_units(HAND, 2, 0, 0, 0.5)
    with pytest.raises(ValueError, match=r"\[3, 1\]"):
        pattern_units(HAND, 0, 3, 1, 0.5)
    with pytest.raises(ValueError, match=r"0..3"):
        pattern_scores(HAND, [4], 0.5)
