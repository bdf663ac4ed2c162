"""Values the colour scale must survive: all-NaN, all-Inf, constant, mixed and huge-range
(1e-30 .. 1e30) activations are drawn with their non-finite counts in the metadata and a finite
range; and property tests of the codec against a decoder written here the way
``js/src/lib/decode.ts`` reads a payload.

Peer failures: one NaN corrupting histograms (tensorflow/tensorboard#87), "The histogram is
empty" on NaN/Inf (weiaicunzai/pytorch-cifar100#51, facebookresearch/pytext#1206), errors that do
not say NaN is the cause (lanpa/tensorboardX#377), one NaN greying a heatmap
(perspective-dev/perspective#430), NaN breaking colour autoscaling (scipp/scipp#1360); standard
JSON cannot carry NaN/Inf.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import wire

MAX_CODE, NON_FINITE = 254, 255
BYTES = {"uint8": 1, "float16": 2, "float32": 4}


def pattern(kind: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The values a layer of that kind outputs, for an output of ``shape``."""
    size = math.prod(shape)
    if kind == "nan":
        values = torch.full((size,), math.nan)
    elif kind == "posinf":
        values = torch.full((size,), math.inf)
    elif kind == "neginf":
        values = torch.full((size,), -math.inf)
    elif kind == "constant":
        values = torch.full((size,), 7.0)
    elif kind == "huge":  # magnitudes from 1e-30 to 1e30, all positive
        values = torch.logspace(-30, 30, size)
    elif kind == "huge_signed":
        values = torch.logspace(-30, 30, size) * torch.tensor([1.0, -1.0]).repeat(size)[:size]
    elif kind == "mixed":
        values = torch.linspace(-3, 5, size)
        values[::7] = math.nan
        values[1::11] = math.inf
        values[2::13] = -math.inf
    else:
        raise ValueError(kind)
    return values.reshape(shape)


KINDS = ["nan", "posinf", "neginf", "constant", "huge", "huge_signed", "mixed"]


class Fill(nn.Module):
    """Replaces its input with the chosen pattern (the same shape)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0 + pattern(self.kind, tuple(x.shape)).to(x.dtype)


def filled_model(kind: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Fill(kind), nn.ReLU()).eval()


def counts(values: np.ndarray) -> dict[str, int]:
    return {
        "nan_count": int(np.isnan(values).sum()),
        "posinf_count": int(np.isposinf(values).sum()),
        "neginf_count": int(np.isneginf(values).sum()),
    }


def check_meta(meta: dict[str, Any], values: np.ndarray) -> None:
    """Counts as numpy counts them, a finite range over the finite values, strict JSON."""
    assert {key: meta[key] for key in counts(values)} == counts(values)
    assert math.isfinite(meta["vmin"]) and math.isfinite(meta["vmax"])
    assert meta["vmin"] <= meta["vmax"]
    finite = values[np.isfinite(values)]
    if finite.size:
        assert meta["vmin"] <= float(finite.min()) and float(finite.max()) <= meta["vmax"]
    else:
        assert (meta["vmin"], meta["vmax"]) == (0.0, 0.0)
    json.dumps(meta, allow_nan=False)  # what a comm message carries: no NaN / Infinity tokens


def decode_like_the_view(data: bytes, meta: dict[str, Any]) -> np.ndarray:
    """A payload decoded as js/src/lib/decode.ts does (float64 arithmetic, as JavaScript's)."""
    shape = tuple(meta["shape"])
    size = math.prod(shape)
    assert len(data) == size * BYTES[meta["dtype"]], "decode.ts refuses a length mismatch"
    if meta["dtype"] == "uint8":
        codes = np.frombuffer(data, dtype=np.uint8).astype(np.float64)
        step = (meta["vmax"] - meta["vmin"]) / MAX_CODE
        values = np.where(codes == NON_FINITE, np.nan, meta["vmin"] + codes * step)
    elif meta["dtype"] == "float16":
        values = np.frombuffer(data, dtype="<f2").astype(np.float64)
    else:
        values = np.frombuffer(data, dtype="<f4").astype(np.float64)
    return values.reshape(shape)


@pytest.mark.parametrize("kind", KINDS)
def test_feature_maps_draw_non_finite_constant_and_huge_activations_with_their_counts(kind):
    model = filled_model(kind)
    torch.manual_seed(1)
    inputs = torch.randn(2, 1, 6, 6)
    with torch.no_grad():
        expected = model[:2](inputs).numpy()  # the layer's output, computed here
    with mv.FeatureMaps(model, inputs, layer="1") as view:
        view.sample, view.channel = 1, 2
        assert view.error == ""
        check_meta(view.grid_meta, expected[1])
        check_meta(view.channel_meta, expected[1, 2])
        shown = decode_like_the_view(view.channel_data, view.channel_meta)
        assert np.array_equal(np.isfinite(shown), np.isfinite(expected[1, 2]))
        finite = np.isfinite(expected[1, 2])
        if kind == "constant":
            assert view.channel_meta["vmin"] == view.channel_meta["vmax"] == 7.0
            np.testing.assert_array_equal(shown, expected[1, 2])
        if kind == "huge":
            assert view.channel_meta["vmin"] == float(expected[1, 2].min())
            assert view.channel_meta["vmax"] == float(expected[1, 2].max())
        if finite.any():
            step = (view.channel_meta["vmax"] - view.channel_meta["vmin"]) / MAX_CODE
            error = np.abs(shown[finite] - expected[1, 2][finite])
            assert error.max() <= step / 2 * (1 + 1e-4) + 1e-30


@pytest.mark.parametrize("encoding", wire.ENCODINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_wire_encodes_non_finite_constant_and_huge_arrays(kind, encoding):
    values = pattern(kind, (3, 5, 7))
    data, meta = wire.encode(values, encoding=encoding)
    check_meta(meta, values.numpy())
    shown = decode_like_the_view(data, meta)
    original = values.numpy()
    if encoding == "uint8":  # code 255 for each non-finite value; the counts say which
        assert np.array_equal(np.isnan(shown), ~np.isfinite(original))
    else:
        assert np.array_equal(np.isnan(shown), np.isnan(original))
        assert np.array_equal(np.isposinf(shown), np.isposinf(original))
        assert np.array_equal(np.isneginf(shown), np.isneginf(original))
    if encoding == "float32":
        np.testing.assert_array_equal(shown, values.numpy())


# -- property tests of the codec --

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9)
ELEMENTS = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
ARRAYS = hnp.arrays(np.float32, SHAPES, elements=ELEMENTS)
PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(values=ARRAYS, encoding=st.sampled_from(wire.ENCODINGS), scale=st.sampled_from(wire.SCALES))
def test_round_trip_through_the_views_decoder(values, encoding, scale):
    """uint8 within half a code of the range, float32 exact, float16 as numpy rounds to it (finite
    values clipped to its range, never made infinite); every NaN and infinity where it was;
    counts exact; metadata strict JSON."""
    data, meta = wire.encode(values, encoding=encoding, scale=scale, byte_budget=None)
    assert tuple(meta["shape"]) == values.shape and not meta["downsampled"]
    check_meta(meta, values)
    shown = decode_like_the_view(data, meta)
    finite = np.isfinite(values)
    if encoding == "float32":
        assert np.array_equal(shown, values.astype(np.float64), equal_nan=True)
    elif encoding == "float16":
        # numpy's rounding to float16, finite values clipped to its range (+-65504) first.
        clipped = np.where(finite, np.clip(values, -65504, 65504), values)
        half = clipped.astype(np.float16).astype(np.float64)
        assert np.array_equal(shown, half, equal_nan=True)
    else:
        assert np.array_equal(np.isnan(shown), ~finite)
        if finite.any():
            step = (meta["vmax"] - meta["vmin"]) / MAX_CODE
            error = np.abs(shown[finite] - values[finite].astype(np.float64))
            slack = 1e-4 * step + 1e-6 * max(abs(meta["vmin"]), abs(meta["vmax"]))
            assert error.max() <= step / 2 + slack, (error.max(), step)


@PROPERTY
@given(
    lead=st.integers(1, 4),
    height=st.integers(1, 120),
    width=st.integers(1, 120),
    encoding=st.sampled_from(wire.ENCODINGS),
    budget=st.integers(1, 6000),
    nan_every=st.integers(0, 5),
)
def test_payloads_respect_the_byte_budget(lead, height, width, encoding, budget, nan_every):
    """Within the budget, or a ValueError that says how to fit; downsampled exactly when the
    array is over it, with a note; the counts are those of the original array."""
    values = torch.arange(lead * height * width, dtype=torch.float32).reshape(lead, height, width)
    if nan_every:
        values.view(-1)[::nan_every] = math.nan
    try:
        data, meta = wire.encode(values, encoding=encoding, byte_budget=budget)
    except ValueError as error:
        assert "byte budget" in str(error) and "byte_budget" in str(error)
        assert lead * BYTES[encoding] > budget  # not even one value per map fits
        return
    assert len(data) <= budget
    over = values.numel() * BYTES[encoding] > budget
    assert meta["downsampled"] == over and bool(meta["note"]) == over
    assert meta["original_shape"] == [lead, height, width]
    check_meta(meta, values.numpy())
    decode_like_the_view(data, meta)  # the length matches the shape
