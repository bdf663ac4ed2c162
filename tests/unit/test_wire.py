"""The wire codec: round trips, non-finite values, scales, encodings and the byte budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from modelviz_widgets import wire


def test_uint8_round_trip_is_within_half_a_step():
    values = torch.linspace(-3.0, 5.0, 1000).reshape(10, 100)
    data, meta = wire.encode(values, scale="linear")
    assert len(data) == values.numel()
    assert meta["dtype"] == "uint8" and meta["shape"] == [10, 100]
    assert meta["vmin"] == -3.0 and meta["vmax"] == 5.0
    decoded = wire.decode(data, meta)
    step = (5.0 - -3.0) / 254
    assert np.abs(decoded - values.numpy()).max() <= step / 2 + 1e-6
    json.dumps(meta, allow_nan=False)  # JSON-safe


def test_extremes_map_to_first_and_last_finite_code():
    data, _ = wire.encode(torch.tensor([2.0, 4.0, 3.0]), scale="linear")
    assert list(data) == [0, 254, 127]


def test_non_finite_values_get_code_255_and_are_counted():
    values = torch.tensor([[1.0, float("nan"), 3.0], [float("inf"), -float("inf"), 2.0]])
    data, meta = wire.encode(values, scale="linear")
    codes = np.frombuffer(data, dtype=np.uint8).reshape(2, 3)
    assert codes[0, 1] == codes[1, 0] == codes[1, 1] == wire.NONFINITE_CODE
    assert (meta["nan_count"], meta["posinf_count"], meta["neginf_count"]) == (1, 1, 1)
    assert (meta["vmin"], meta["vmax"]) == (1.0, 3.0)  # the range covers the finite values only
    decoded = wire.decode(data, meta)
    assert np.isnan(decoded[0, 1]) and np.isnan(decoded[1, 0])
    np.testing.assert_allclose(decoded[0, [0, 2]], [1.0, 3.0])
    json.dumps(meta, allow_nan=False)


@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
def test_all_non_finite_is_drawable(fill):
    data, meta = wire.encode(torch.full((3, 4), fill))
    assert set(data) == {wire.NONFINITE_CODE}
    assert (meta["vmin"], meta["vmax"]) == (0.0, 0.0)
    json.dumps(meta, allow_nan=False)


def test_constant_and_empty_arrays():
    data, meta = wire.encode(torch.full((2, 2), 7.0))
    assert set(data) == {0} and meta["vmin"] == meta["vmax"] == 7.0
    data, meta = wire.encode(torch.zeros(0, 5))
    assert data == b"" and meta["shape"] == [0, 5]


def test_symmetric_scale_for_signed_data():
    values = torch.tensor([-1.0, 0.0, 4.0])
    data, meta = wire.encode(values)  # auto: both signs -> symmetric
    assert meta["scale"] == "symmetric" and (meta["vmin"], meta["vmax"]) == (-4.0, 4.0)
    assert list(data)[1] == 127  # zero sits in the middle of the diverging map
    _, meta = wire.encode(torch.tensor([0.5, 2.0]))
    assert meta["scale"] == "linear"


@pytest.mark.parametrize("encoding,dtype", [("float16", "<f2"), ("float32", "<f4")])
def test_float_encodings_keep_values(encoding, dtype):
    values = torch.tensor([[0.1, -2.5, float("nan")], [float("inf"), 3e3, -float("inf")]])
    data, meta = wire.encode(values, encoding=encoding)
    assert len(data) == values.numel() * np.dtype(dtype).itemsize
    decoded = wire.decode(data, meta)
    expected = values.numpy().astype(dtype).astype(np.float32)
    np.testing.assert_array_equal(decoded, expected)  # NaN == NaN for assert_array_equal
    assert (meta["nan_count"], meta["posinf_count"], meta["neginf_count"]) == (1, 1, 1)


def test_any_input_dtype_and_layout():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    for values in (
        base.to(torch.bfloat16),
        base.half(),
        base.double(),
        base.t(),  # non-contiguous
        base.numpy(),
        base.requires_grad_(True),
    ):
        data, meta = wire.encode(values, encoding="float32")
        assert meta["shape"] == list(values.shape)
        expected = base.detach().numpy()
        if values.shape != base.shape:
            expected = expected.T
        np.testing.assert_array_equal(wire.decode(data, meta), expected)


def test_byte_budget_downsamples_and_says_so():
    values = torch.randn(64, 56, 56)
    data, meta = wire.encode(values, byte_budget=64 * 28 * 28)
    assert len(data) <= 64 * 28 * 28
    assert meta["downsampled"] and meta["shape"] == [64, 28, 28]
    assert meta["original_shape"] == [64, 56, 56]
    assert "1/2" in meta["note"]
    decoded = wire.decode(data, meta)
    block_means = values.reshape(64, 28, 2, 28, 2).mean(dim=(2, 4)).numpy()
    step = (meta["vmax"] - meta["vmin"]) / 254
    assert np.abs(decoded - block_means).max() <= step / 2 + 1e-5


def test_downsampling_ignores_nan_inside_a_block_and_keeps_all_nan_blocks():
    values = torch.tensor(
        [[1.0, float("nan"), float("nan"), float("nan")], [3.0, 5.0, float("nan"), float("nan")]]
    )
    small = wire.downsample(values, 2)
    assert small.shape == (1, 2)
    assert small[0, 0] == 3.0 and math.isnan(small[0, 1])


def test_uneven_sizes_are_padded_not_cropped():
    small = wire.downsample(torch.ones(5, 7), 2)
    assert small.shape == (3, 4) and torch.all(small == 1)


def test_budget_that_cannot_be_met_is_an_error():
    with pytest.raises(ValueError, match="cannot fit a byte budget"):
        wire.encode(torch.randn(1000, 4, 4), byte_budget=10)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="valid encodings"):
        wire.encode(torch.ones(2), encoding="int4")
    with pytest.raises(ValueError, match="valid scales"):
        wire.encode(torch.ones(2), scale="log")
    with pytest.raises(TypeError, match="complex"):
        wire.encode(torch.ones(2, dtype=torch.complex64))


def test_uint8_is_a_quarter_of_float32():
    values = torch.randn(64, 56, 56)
    data, meta = wire.encode(values)
    raw = values.numel() * 4
    assert len(data) / raw == 0.25
    assert len(json.dumps(meta)) < 1024
