"""The activation statistics of one forward call, reduced where the output is: what kind of
activation a module is, each call's sum, L2 norm and saturated count, and a ReLU's per-unit sums
over the batch (a unit that never fired sums to 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

RELU_TYPES = (nn.ReLU, nn.ReLU6)
SATURATING = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardtanh: "tanh"}
ACTIVATION_TYPES = (
    *RELU_TYPES, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
    nn.Softplus, nn.Mish, nn.PReLU,
)  # fmt: skip

SATURATION = 0.01
"""A sigmoid output within this of 0 or 1 (a tanh output within it of -1 or 1) is saturated."""


def activation_kind(module: nn.Module) -> str:
    """``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"activation"`` or ``""`` (not an activation)."""
    if isinstance(module, RELU_TYPES):
        return "relu"
    for types, kind in SATURATING.items():
        if isinstance(module, types):
            return kind
    return "activation" if isinstance(module, ACTIVATION_TYPES) else ""


def _memory_order(values: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """``values`` with dims 1.. permuted into memory order (contiguous: a view when it can be,
    a copy otherwise), and the permutation of the unit dims that puts them back in order."""
    if values.is_contiguous():
        return values, list(range(values.dim() - 1))
    if values.dim() == 4 and values.is_contiguous(memory_format=torch.channels_last):
        return values.permute(0, 2, 3, 1), [2, 0, 1]
    order = sorted(range(values.dim() - 1), key=lambda d: values.stride(d + 1), reverse=True)
    ordered = values.permute(0, *(d + 1 for d in order))
    if not ordered.is_contiguous():
        return values.contiguous(), list(range(values.dim() - 1))
    return ordered, sorted(range(len(order)), key=order.__getitem__)


def unit_sums(values: torch.Tensor) -> torch.Tensor:
    """Each unit's sum over the batch (dim 0), in the shape of one sample.

    The tensor is read in its memory order: a channels-last output (what a convolution gives
    for a one-channel input) is reduced without a copy, then its units put back in order.
    """
    ordered, back = _memory_order(values)
    sums = ordered.reshape(values.shape[0], -1).sum(dim=0)
    if ordered is values:
        return sums.view(values.shape[1:])
    return sums.view(ordered.shape[1:]).permute(*back)  # a view: no copy


def sums_row(sums: list[torch.Tensor]) -> torch.Tensor:
    """One call's ``[sum, norm, saturated]`` as a tensor (0 saturated when not counted)."""
    return torch.stack([value.double() for value in [*sums, sums[0].new_zeros(())][:3]])


def activation_sums(output: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """Sum, L2 norm and saturated count of one call's output (0-d tensors)."""
    total = output.sum()
    norm = torch.linalg.vector_norm(output)
    if kind not in ("sigmoid", "tanh"):
        return [total, norm]
    return [total, norm, saturated(output, kind).sum().to(count_dtype(total.dtype))]


def saturated(values: Any, kind: str) -> Any:
    """Which outputs of a ``"sigmoid"`` or ``"tanh"`` layer are saturated: a boolean tensor or
    array (torch's or numpy's, as ``values``)."""
    if kind == "sigmoid":
        return (values < SATURATION) | (values > 1.0 - SATURATION)
    return abs(values) > 1.0 - SATURATION


def count_dtype(dtype: torch.dtype) -> torch.dtype:
    """A floating dtype that holds counts of values exactly (float16 and bfloat16 do not past
    2,048 and 256): ``dtype`` itself from float32 up."""
    return torch.promote_types(dtype, torch.float32)


_ONES = np.ones(0, dtype=np.float32)


def host_sums(values: torch.Tensor, kind: str) -> tuple[float, float, float, np.ndarray | None]:
    """:func:`activation_sums` (with the sum of squares for the norm) and, for a ReLU, the
    :func:`unit_sums`, for a float32 CPU tensor, in numpy: two BLAS calls over the values (a
    product with a vector of ones for the per-unit sums, a dot product for the squares), whose
    code stays warm from one layer to the next when several are reduced in a row."""
    global _ONES
    ordered, back = _memory_order(values)
    array = ordered.numpy()
    rows = values.shape[0] if values.dim() >= 2 else 1
    if _ONES.size < rows:
        _ONES = np.ones(rows, dtype=np.float32)
    table = array.reshape(rows, -1)
    units = _ONES[:rows] @ table  # each unit's sum over the batch
    flat = array.reshape(-1)
    squares = float(np.dot(flat, flat))
    total = float(units.sum(dtype=np.float64))
    count = 0.0
    if kind in ("sigmoid", "tanh"):
        count = float(np.count_nonzero(saturated(flat, kind)))
    if kind != "relu" or values.dim() < 2:
        return total, squares, count, None
    if ordered is not values:
        units = units.reshape(ordered.shape[1:]).transpose(back)
    return total, squares, count, units.reshape(values.shape[1:])
