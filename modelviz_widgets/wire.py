"""Tensor <-> bytes codec for what the views draw.

A payload is ``(data, meta)``: raw bytes and a small JSON-safe dict (see ``docs/wire-and-dom.md``).
The default ``uint8`` encoding maps the finite values linearly onto codes 0..254 and marks every
non-finite value with code 255, so one NaN neither breaks the color scale nor crashes a view; the
counts of NaN, +Inf and -Inf ride in the metadata.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal

import numpy as np
import torch

Encoding = Literal["uint8", "float16", "float32"]
Scale = Literal["auto", "linear", "symmetric"]

ENCODINGS: tuple[str, ...] = ("uint8", "float16", "float32")
SCALES: tuple[str, ...] = ("auto", "linear", "symmetric")
NONFINITE_CODE = 255
_TOP_CODE = 254
DEFAULT_BYTE_BUDGET = 2_000_000
_HALF_MAX = 65504.0  # the largest finite float16
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)

_BYTES_PER_VALUE = {"uint8": 1, "float16": 2, "float32": 4}


def as_float_tensor(values: Any) -> torch.Tensor:
    """Return ``values`` as a detached, contiguous float32 CPU tensor.

    Accepts tensors of any dtype and device (bfloat16 and CUDA included) and numpy arrays. Only the
    given values are moved, so callers slice on the device first.
    """
    if isinstance(values, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(values))
    elif isinstance(values, torch.Tensor):
        tensor = values.detach()
    else:
        tensor = torch.as_tensor(values)
    if tensor.is_complex():
        raise TypeError("complex tensors cannot be drawn; pass .abs() or .real")
    return tensor.to(device="cpu", dtype=torch.float32).contiguous()


def _finite_range(flat: torch.Tensor) -> tuple[float, float, int, int, int]:
    """``(vmin, vmax, nan_count, posinf_count, neginf_count)`` over the finite values."""
    if flat.numel() == 0:
        return 0.0, 0.0, 0, 0, 0
    low, high = torch.aminmax(flat)
    vmin, vmax = float(low), float(high)
    if math.isfinite(vmin) and math.isfinite(vmax):
        # min and max are finite only when no value is NaN or infinite: the usual case, one pass.
        return vmin, vmax, 0, 0, 0
    # The rare case, in numpy: its element-wise tests are several times faster than torch's here.
    values = flat.numpy()
    nan_count = int(np.count_nonzero(np.isnan(values)))
    posinf_count = int(np.count_nonzero(values == np.inf))
    neginf_count = int(np.count_nonzero(values == -np.inf))
    if nan_count + posinf_count + neginf_count == values.size:
        return 0.0, 0.0, nan_count, posinf_count, neginf_count
    if posinf_count or neginf_count:
        finite = np.isfinite(values)
        vmin = float(np.min(values, where=finite, initial=np.inf))
        vmax = float(np.max(values, where=finite, initial=-np.inf))
    else:
        vmin, vmax = float(np.fmin.reduce(values)), float(np.fmax.reduce(values))
    return vmin, vmax, nan_count, posinf_count, neginf_count


class _Scratch(threading.local):
    """Per-thread work buffers, grown as needed and reused, so an update allocates nothing big
    (fresh large allocations cost page faults that can exceed the arithmetic)."""

    def __init__(self) -> None:
        self.floats = torch.empty(0, dtype=torch.float32)
        self.codes = np.empty(0, dtype=np.uint8)

    def take(self, size: int) -> tuple[torch.Tensor, np.ndarray]:
        if self.floats.numel() < size:
            self.floats = torch.empty(size, dtype=torch.float32)
            self.codes = np.empty(size, dtype=np.uint8)
        return self.floats[:size], self.codes[:size]


_scratch = _Scratch()


def _quantize(flat: torch.Tensor, vmin: float, vmax: float, has_nonfinite: bool) -> bytes:
    """Codes 0..254 over [vmin, vmax]; 255 for non-finite values when ``has_nonfinite``."""
    span = vmax - vmin
    factor = _TOP_CODE / span if span > 0 else 0.0
    scaled, codes = _scratch.take(flat.numel())
    # The truncating cast below rounds 0.5 + (x - vmin) * factor to the nearest code. The cast is
    # numpy's: several times faster than torch's float -> uint8.
    if factor <= _FLOAT32_MAX and abs(vmin) * factor <= 4096.0:
        # One fused pass, 0.5 - vmin * factor + factor * x: the usual case, where float32 keeps
        # every code exact.
        torch.add(torch.tensor(0.5 - vmin * factor), flat, alpha=factor, out=scaled)
    elif span <= _FLOAT32_MAX and factor <= _FLOAT32_MAX:
        # A range narrow for its distance from 0 (1000.0 .. 1000.0002): subtract first, or float32
        # cancellation would scramble the codes.
        torch.sub(flat, vmin, out=scaled).mul_(factor).add_(0.5)
    else:
        # A span float32 cannot hold, or whose reciprocal it cannot (1e-38 wide): in float64.
        scaled.copy_(flat.double().sub(vmin).mul(factor).add(0.5))
    values = scaled.numpy()
    with np.errstate(invalid="ignore"):  # NaN and inf * 0 end up marked below
        if has_nonfinite:
            np.clip(values, 0, _TOP_CODE, out=values)
            np.copyto(values, NONFINITE_CODE, where=~np.isfinite(flat.numpy()))
        np.copyto(codes, values, casting="unsafe")
    return codes.tobytes()


def downsample(tensor: torch.Tensor, factor: int) -> torch.Tensor:
    """Shrink the last two axes by ``factor`` with a block mean that ignores non-finite values.

    A block with no finite value becomes NaN, so a region of NaN stays visible after shrinking.
    """
    if factor <= 1:
        return tensor
    *lead, height, width = tensor.shape
    out_h, out_w = math.ceil(height / factor), math.ceil(width / factor)
    pad_h, pad_w = out_h * factor - height, out_w * factor - width
    images = tensor.reshape(-1, 1, height, width)
    finite = torch.isfinite(images)
    values = torch.where(finite, images, torch.zeros((), dtype=images.dtype))
    weights = finite.to(images.dtype)
    if pad_h or pad_w:
        values = torch.nn.functional.pad(values, (0, pad_w, 0, pad_h))
        weights = torch.nn.functional.pad(weights, (0, pad_w, 0, pad_h))
    sums = torch.nn.functional.avg_pool2d(values, factor, divisor_override=1)
    counts = torch.nn.functional.avg_pool2d(weights, factor, divisor_override=1)
    means = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))
    return means.reshape(*lead, out_h, out_w)


def _budget_factor(shape: tuple[int, ...], bytes_per_value: int, byte_budget: int | None) -> int:
    """Smallest factor for the last two axes that brings the payload within ``byte_budget``."""
    total = math.prod(shape) * bytes_per_value
    if byte_budget is None or total <= byte_budget or len(shape) < 2:
        return 1
    if byte_budget <= 0:
        raise ValueError(f"byte_budget must be positive, got {byte_budget}")
    factor = max(2, math.ceil(math.sqrt(total / byte_budget)))
    lead = math.prod(shape[:-2])
    height, width = shape[-2], shape[-1]
    while (
        lead * math.ceil(height / factor) * math.ceil(width / factor) * bytes_per_value
        > byte_budget
    ):
        if factor >= max(height, width):
            raise ValueError(
                f"an array of shape {list(shape)} cannot fit a byte budget of {byte_budget} bytes "
                "even "
                "at one value per map; raise byte_budget or select fewer channels"
            )
        factor += 1
    return factor


def encode(
    values: Any,
    *,
    encoding: Encoding = "uint8",
    scale: Scale = "auto",
    byte_budget: int | None = DEFAULT_BYTE_BUDGET,
    seq: int = 0,
    from_zero: bool = False,
) -> tuple[bytes, dict[str, Any]]:
    """Encode an array for a view; see :func:`encode_shown` for the parameters."""
    data, meta, _shown = encode_shown(
        values, encoding=encoding, scale=scale, byte_budget=byte_budget, seq=seq,
        from_zero=from_zero,
    )  # fmt: skip
    return data, meta


def encode_shown(
    values: Any,
    *,
    encoding: Encoding = "uint8",
    scale: Scale = "auto",
    byte_budget: int | None = DEFAULT_BYTE_BUDGET,
    seq: int = 0,
    from_zero: bool = False,
) -> tuple[bytes, dict[str, Any], torch.Tensor]:
    """Encode an array for a view, also returning the float32 values the payload stands for.

    Parameters
    ----------
    values
        A tensor or array of any float dtype and device.
    encoding
        ``"uint8"`` (default; codes 0..254 over [vmin, vmax], 255 = non-finite), ``"float16"`` or
        ``"float32"`` for exact values (float16 clips finite values to its range, +-65504).
    scale
        ``"linear"``, ``"symmetric"`` (``vmin = -vmax``; for signed quantities such as gradients) or
        ``"auto"``: symmetric when the finite values have both signs.
    byte_budget
        Largest payload in bytes; a larger array is shrunk on its last two axes with a NaN-aware
        block mean and the metadata says so. ``None`` means no limit.
    seq
        Update number stored in the metadata.
    from_zero
        A linear range that starts at 0 (or below): for non-negative quantities such as
        probabilities, so that code 0 means zero.

    Returns
    -------
    (data, meta, shown)
        ``data`` holds the values in C order; ``meta`` is described in ``docs/wire-and-dom.md``;
        ``shown`` is the float32 CPU tensor that was encoded (downsampled when the budget asked).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; valid encodings are {list(ENCODINGS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales are {list(SCALES)}")
    tensor = as_float_tensor(values)
    original_shape = tuple(tensor.shape)
    factor = _budget_factor(original_shape, _BYTES_PER_VALUE[encoding], byte_budget)
    flat_original = tensor.reshape(-1)
    vmin, vmax, nan_count, posinf_count, neginf_count = _finite_range(flat_original)
    if factor > 1:
        tensor = downsample(tensor, factor)
    flat = tensor.reshape(-1)

    if scale == "auto":
        scale = "symmetric" if vmin < 0 < vmax else "linear"
    if scale == "symmetric":
        bound = max(abs(vmin), abs(vmax))
        vmin, vmax = -bound, bound
    elif from_zero:
        vmin = min(vmin, 0.0)

    has_nonfinite = bool(nan_count or posinf_count or neginf_count)
    if encoding == "uint8":
        data = _quantize(flat, vmin, vmax, has_nonfinite or factor > 1)
    elif encoding == "float16":
        if max(abs(vmin), abs(vmax)) > _HALF_MAX:
            # Finite values beyond float16's range are clipped to it rather than turned into
            # infinities: only a non-finite value may decode as one.
            clipped = flat.clamp(-_HALF_MAX, _HALF_MAX)
            flat = torch.where(torch.isfinite(flat), clipped, flat)
        data = flat.to(torch.float16).numpy().astype("<f2", copy=False).tobytes()
    else:
        data = flat.numpy().astype("<f4", copy=False).tobytes()

    downsampled = factor > 1
    meta: dict[str, Any] = {
        "shape": list(tensor.shape),
        "dtype": encoding,
        "vmin": vmin,
        "vmax": vmax,
        "scale": scale,
        "nan_count": nan_count,
        "posinf_count": posinf_count,
        "neginf_count": neginf_count,
        "seq": seq,
        "downsampled": downsampled,
        "original_shape": list(original_shape),
        "note": (
            f"shown at 1/{factor} resolution to stay within {byte_budget:,} bytes"
            if downsampled
            else ""
        ),
    }
    return data, meta, tensor


def decode(data: bytes | memoryview, meta: dict[str, Any]) -> np.ndarray:
    """Decode a payload back to float32 (the inverse of :func:`encode` up to quantization).

    uint8 code 255 decodes to NaN: which non-finite value it was is kept only in the counts.
    """
    dtype = meta["dtype"]
    shape = tuple(meta["shape"])
    if dtype == "uint8":
        codes = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        step = (meta["vmax"] - meta["vmin"]) / _TOP_CODE
        values = (meta["vmin"] + codes.astype(np.float32) * np.float32(step)).astype(np.float32)
        values[codes == NONFINITE_CODE] = np.nan
        return values
    if dtype == "float16":
        return np.frombuffer(data, dtype="<f2").reshape(shape).astype(np.float32)
    if dtype == "float32":
        return np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    raise ValueError(
        f"unknown dtype {dtype!r} in payload metadata; valid dtypes are {list(ENCODINGS)}"
    )
