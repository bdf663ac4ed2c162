"""Pattern search over recurrent states, in the manner of LSTMVis.

Select a time range of one sequence and a threshold: the units that are *on* (value >= threshold)
at every step of the range and *off* (value < threshold) at every other valid step of that sequence
are the ones whose activity marks that range. Where else those units are on together — in any
sequence of the batch — is the match. Pure torch; states are ``[batch, time, units]``.
"""

from __future__ import annotations

import torch


def _valid_steps(batch: int, time: int, lengths: torch.Tensor | None) -> torch.Tensor:
    """``[batch, time]`` boolean mask of the steps inside each sequence."""
    if lengths is None:
        return torch.ones(batch, time, dtype=torch.bool)
    lengths = torch.as_tensor(lengths).reshape(-1).cpu()
    if lengths.numel() != batch:
        raise ValueError(f"got {lengths.numel()} lengths for a batch of {batch} sequences")
    return torch.arange(time)[None, :] < lengths[:, None]


def _check_states(states: torch.Tensor) -> torch.Tensor:
    if states.dim() != 3:
        raise ValueError(
            f"states must be [batch, time, units], got a tensor of shape {list(states.shape)}"
        )
    return states.detach().to(device="cpu", dtype=torch.float32)


def pattern_units(
    states: torch.Tensor,
    sample: int,
    start: int,
    end: int,
    threshold: float,
    lengths: torch.Tensor | None = None,
    margin: int | None = None,
) -> torch.Tensor:
    """The units on throughout ``[start, end]`` of one sequence and off outside it.

    Parameters
    ----------
    states
        ``[batch, time, units]`` values (hidden states, cell states or gates).
    sample
        The sequence the range is selected in.
    start, end
        First and last step of the range, inclusive.
    threshold
        A unit is on at a step when its value is ``>= threshold``, off when it is below.
    lengths
        Valid steps of each sequence; the padded steps count neither as on nor as off.
    margin
        How many steps on each side of the range must be off; ``None`` (the default): every
        valid step outside the range.

    Returns
    -------
    torch.Tensor
        Indices of the matching units, ascending (``int64``; empty when none match).
    """
    values = _check_states(states)
    batch, time, _ = values.shape
    if not 0 <= sample < batch:
        raise ValueError(f"sample {sample} is out of range; valid samples are 0..{batch - 1}")
    valid = _valid_steps(batch, time, lengths)[sample]
    length = int(valid.sum())
    if not 0 <= start <= end < length:
        raise ValueError(
            f"the range [{start}, {end}] must satisfy 0 <= start <= end < {length} "
            f"(the length of sequence {sample})"
        )
    if margin is not None and margin < 0:
        raise ValueError(f"margin must be >= 0 or None, got {margin}")
    on = values[sample] >= threshold  # [time, units]
    steps = torch.arange(time)
    inside = (steps >= start) & (steps <= end)
    outside = valid & ~inside
    if margin is not None:
        outside &= (steps >= start - margin) & (steps <= end + margin)
    on_inside = on[inside].all(dim=0)
    off_outside = (~on[outside]).all(dim=0)  # all() of nothing is True: no outside, no constraint
    return torch.nonzero(on_inside & off_outside).reshape(-1)


def pattern_scores(
    states: torch.Tensor,
    units: torch.Tensor | list[int],
    threshold: float,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per sequence and step, the fraction of ``units`` that are on.

    Returns ``[batch, time]`` float32 in [0, 1]; 1 where all of them fire together; 0 at padded
    steps and everywhere when ``units`` is empty.
    """
    values = _check_states(states)
    batch, time, n_units = values.shape
    index = torch.as_tensor(units, dtype=torch.long).reshape(-1)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_units):
        raise ValueError(f"unit indices must be in 0..{n_units - 1}, got {index.tolist()}")
    if index.numel() == 0:
        return torch.zeros(batch, time)
    on = (values[:, :, index] >= threshold).float().mean(dim=2)
    return on * _valid_steps(batch, time, lengths).float()


def pattern_mask(
    states: torch.Tensor,
    units: torch.Tensor | list[int],
    threshold: float,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[batch, time]`` boolean: where every one of ``units`` is on (none when it is empty)."""
    index = torch.as_tensor(units, dtype=torch.long).reshape(-1)
    scores = pattern_scores(states, index, threshold, lengths)
    if index.numel() == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    return scores >= 1.0


def pattern_runs(mask: torch.Tensor) -> list[tuple[int, int, int]]:
    """The maximal runs of ``True`` in a ``[batch, time]`` mask as ``(sample, start, end)``."""
    runs: list[tuple[int, int, int]] = []
    rows = mask.detach().cpu().bool()
    for sample in range(rows.shape[0]):
        start = None
        for step, on in enumerate(rows[sample].tolist()):
            if on and start is None:
                start = step
            elif not on and start is not None:
                runs.append((sample, start, step - 1))
                start = None
        if start is not None:
            runs.append((sample, start, rows.shape[1] - 1))
    return runs


def search_pattern(
    values: torch.Tensor,
    sample: int,
    start: int,
    end: int,
    threshold: float,
    lengths: torch.Tensor,
) -> tuple[list[int], torch.Tensor, list[tuple[int, int, int]]]:
    """The whole search for one selected range: the units on inside ``[start, end]`` of
    ``sample`` and off outside it, their match score at every step of every sequence, and the
    runs where all of them fire together (see :func:`pattern_units`, :func:`pattern_scores`,
    :func:`pattern_runs`)."""
    units = [int(unit) for unit in pattern_units(values, sample, start, end, threshold, lengths)]
    scores = pattern_scores(values, units, threshold, lengths)
    runs = pattern_runs(pattern_mask(values, units, threshold, lengths))
    return units, scores, runs
