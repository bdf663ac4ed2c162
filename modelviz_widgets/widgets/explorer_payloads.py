"""What the Explorer's view draws, computed from tensors: the top classes, the distributions of a
layer, the input thumbnails, and the small texts and conversions around them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capture.hooks import output_logits
from .explorer_core import HIST_BINS, HIST_ROWS, STRIP_LIMIT, THUMBNAIL, TOP_K


def top_classes(logits: torch.Tensor, names: list[str] | None) -> list[dict[str, Any]]:
    """The most probable classes of one sample's scores: ``{class, label, probability}``."""
    probabilities = torch.softmax(logits.float(), dim=0)
    values, classes = probabilities.topk(min(TOP_K, probabilities.numel()))
    return [
        {
            "class": int(c),
            "label": names[int(c)] if names and int(c) < len(names) else str(int(c)),
            "probability": float(p),
        }
        for p, c in zip(values.tolist(), classes.tolist(), strict=True)
    ]


def distributions(
    tensors: list[torch.Tensor | None],
) -> tuple[np.ndarray, list[dict[str, Any] | None]]:
    """``[len(HIST_ROWS), HIST_BINS]`` counts over each tensor's finite range, and each row's
    ``{name, low, high, count, nonfinite}`` (``None`` for an absent tensor)."""
    counts = np.zeros((len(HIST_ROWS), HIST_BINS), dtype=np.float32)
    rows: list[dict[str, Any] | None] = []
    for index, tensor in enumerate(tensors):
        if tensor is None or tensor.numel() == 0:
            rows.append(None)
            continue
        values = tensor.detach().float().cpu().reshape(-1).numpy()
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        counts[index], _ = np.histogram(finite, bins=HIST_BINS, range=(low, high))
        rows.append(
            {
                "name": HIST_ROWS[index],
                "low": low,
                "high": high,
                "count": int(values.size),
                "nonfinite": int(values.size - finite.size),
            }
        )
    return counts, rows


def thumbnails(inputs: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The first :data:`STRIP_LIMIT` inputs as small pictures: ``[N, 3, h, w]`` colour images,
    ``[N, h, w]`` (the channel mean) for other images, ``[N, 1, L]`` strips for anything else;
    and whether they are colour."""
    shown = inputs[:STRIP_LIMIT].detach().float().cpu()
    rgb = shown.dim() == 4 and shown.shape[1] == 3
    if shown.dim() == 4:
        pictures = shown if rgb else shown.mean(dim=1, keepdim=True)
        height, width = pictures.shape[2:]
        side = max(height, width)
        if side > THUMBNAIL:
            size = (max(1, height * THUMBNAIL // side), max(1, width * THUMBNAIL // side))
            pictures = F.adaptive_avg_pool2d(pictures, size)
        return (pictures if rgb else pictures[:, 0]), bool(rgb)
    flat = shown.reshape(shown.shape[0], 1, -1)
    return F.adaptive_avg_pool1d(flat, min(flat.shape[2], 64)), False


def class_scores(output: Any) -> torch.Tensor | None:
    """``[N, classes]`` scores when the model's output is one score per class."""
    try:
        logits = output_logits(output)
    except (TypeError, ValueError):
        return None
    if logits.dim() != 2 or logits.shape[1] < 2 or not logits.is_floating_point():
        return None
    return logits.detach()


def own_parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    value = module._parameters.get(name)
    return value.detach() if isinstance(value, torch.Tensor) else None


def batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() > 0 else 1
    if isinstance(inputs, (tuple, list)) and inputs:
        return batch_size(inputs[0])
    if isinstance(inputs, dict) and inputs:
        return batch_size(next(iter(inputs.values())))
    return 1


def badge_dict(badge: Any) -> dict[str, str]:
    return {"kind": badge.kind, "level": badge.level, "message": badge.message}


def finite_or_none(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def label_strings(labels: Any, n: int) -> list[str]:
    if labels is None:
        return []
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    if len(values) != n:
        raise ValueError(f"got {len(values)} labels for {n} inputs; pass one label per input")
    return [str(value) for value in values]


def strip_text(inputs: Any, tokens: Any) -> list[str]:
    """One line per input sequence: its tokens, or its ids."""
    if tokens is not None:
        rows = list(tokens)
        if rows and all(isinstance(token, str) for token in rows):
            rows = [rows]
        return [" ".join(map(str, row))[:200] for row in rows[:STRIP_LIMIT]]
    if isinstance(inputs, torch.Tensor) and inputs.dim() >= 1:
        ids = inputs[:STRIP_LIMIT].reshape(min(STRIP_LIMIT, inputs.shape[0]), -1)
        return [" ".join(str(v) for v in row[:40].tolist()) for row in ids]
    return []


def summary_line(rows: list[dict[str, Any]], health: dict[str, Any]) -> str:
    flagged = sum(1 for h in health.values() if h.badges)
    params = rows[0]["n_params"] if rows else 0
    text = f"{len(rows) - 1} modules, {params:,} parameters"
    return text + (f"; {flagged} layer(s) flagged" if flagged else "; no layer flagged")
