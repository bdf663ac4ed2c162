"""dtypes, layouts and devices: float16, bfloat16 and float64 models, non-contiguous inputs,
empty inputs (a clear error, never a crash or a hang), inputs that require grad (left untouched),
and only the selected slice of an activation leaving the model's device.

Peer failures: ``.numpy()`` on bfloat16 / CUDA / requires-grad tensors (pytorch/pytorch#110285,
xwying/torchshow#23), ``memoryview`` on non-contiguous data (ipygany-style serializers force
``np.ascontiguousarray``).
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import wire

from ._models import SUBJECTS, Subject, assert_unchanged, close, finish, make, model_snapshot

FLOAT_INPUTS = [s for s in SUBJECTS if s.model != "tagger" and s.forward]
DTYPES = [torch.float16, torch.bfloat16, torch.float64]


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM: the main thread, Linux)."""

    def expire(*_: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def payload_metas(made: Any) -> list[dict[str, Any]]:
    core = getattr(made, "core", made)
    return [
        getattr(core, name)
        for name in core.trait_names()
        if name.endswith("_meta") and getattr(core, name)
    ]


def check_drawn(subject: Subject, made: Any) -> None:
    """A widget drew something sane: no error, float32 arrays, finite colour ranges."""
    if not subject.widget:
        return
    assert made.error == "", f"{subject}: {made.error}"
    for key, array in getattr(made, "core", made).current.items():  # the payloads' arrays
        assert array.dtype == np.float32, (subject, key)
    for meta in payload_metas(made):
        if "vmin" in meta:
            assert math.isfinite(meta["vmin"]) and math.isfinite(meta["vmax"]), (subject, meta)


def torch_runs(model: torch.nn.Module, inputs: Any) -> bool:
    """Whether torch itself runs this model on this CPU in this dtype (forward and backward)."""
    try:
        with torch.enable_grad():
            output = model(inputs)
            output.float().sum().backward()
    except (RuntimeError, NotImplementedError):
        return False
    finally:
        model.zero_grad(set_to_none=True)
    return True


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("subject", SUBJECTS, ids=str)
def test_low_and_high_precision_models_are_drawn(subject: Subject, dtype: torch.dtype):
    model, inputs = make(subject)
    model = model.to(dtype).eval()
    if inputs.is_floating_point():
        inputs = inputs.to(dtype)
    if not torch_runs(model, inputs):
        pytest.skip(f"torch {torch.__version__} cannot run this model in {dtype} on this CPU")
    made = finish(subject.build(model, inputs))
    if subject.drive is not None:
        subject.drive(made)
    check_drawn(subject, made)
    close(made)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_feature_maps_show_the_layers_values_in_any_dtype(dtype: torch.dtype):
    """What is on screen is the layer's own output converted to float32, exactly (the reference:
    a forward hook written here, on the same model in the same dtype)."""
    model, inputs = make(next(s for s in SUBJECTS if s.id == "FeatureMaps"))
    model, inputs = model.to(dtype).eval(), inputs.to(dtype)
    seen: dict[str, torch.Tensor] = {}
    handle = model.features[5].register_forward_hook(lambda m, a, out: seen.update(out=out))
    with torch.no_grad():
        model(inputs)
    handle.remove()
    with mv.FeatureMaps(model, inputs, layer="features.5") as view:
        view.sample, view.channel = 2, 3
        expected = seen["out"][2].float()
        assert torch.equal(torch.from_numpy(view.current["grid"]), expected)
        assert torch.equal(torch.from_numpy(view.current["channel"]), expected[3])


@pytest.mark.parametrize("subject", FLOAT_INPUTS, ids=str)
def test_non_contiguous_inputs_give_the_same_result(subject: Subject):
    """A transposed view and a strided slice are drawn as their contiguous copies are."""
    model, inputs = make(subject)
    transposed = inputs.transpose(-1, -2).contiguous().transpose(-1, -2)
    strided = torch.repeat_interleave(inputs, 2, dim=-1)[..., ::2]
    assert not transposed.is_contiguous() and not strided.is_contiguous()
    assert torch.equal(transposed, inputs) and torch.equal(strided, inputs)
    results = []
    for variant in (inputs, transposed, strided):
        torch.manual_seed(0)
        made = finish(subject.build(model, variant))
        check_drawn(subject, made)
        if subject.widget:
            results.append({key: value.copy() for key, value in made.current.items()})
        close(made)
    if results:
        for other in results[1:]:
            assert other.keys() == results[0].keys()
            for key in other:
                np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)


def test_the_wire_encodes_a_non_contiguous_tensor_as_its_contiguous_copy():
    torch.manual_seed(0)
    values = torch.randn(3, 5, 7)
    view = values.transpose(0, 2)
    for encoding in wire.ENCODINGS:
        assert wire.encode(view, encoding=encoding) == wire.encode(
            view.contiguous(), encoding=encoding
        )


ZERO_SHAPES = {
    "cnn": [(0, 1, 8, 8), (6, 0, 8, 8), (6, 1, 0, 0)],
    "tagger": [(0, 5), (3, 0)],
    "attention": [(0, 5, 8), (2, 0, 8)],
}


@pytest.mark.parametrize(
    ("subject", "shape"),
    [(s, shape) for s in SUBJECTS if s.forward for shape in ZERO_SHAPES[s.model]],
    ids=lambda v: str(v) if isinstance(v, Subject) else "x".join(map(str, v)),
)
def test_empty_inputs_get_a_clear_error(subject: Subject, shape: tuple[int, ...]):
    """A batch of 0 samples, 0 channels or 0 pixels: a ValueError that says so, within seconds
    (never torch's reshape / index errors, a ZeroDivisionError or an AttributeError)."""
    model, _ = make(subject)
    dtype = torch.long if subject.model == "tagger" else torch.float32
    inputs = torch.zeros(shape, dtype=dtype)
    with deadline(30), pytest.raises(ValueError, match=r"empty|label") as caught:
        made = finish(subject.build(model, inputs))
        close(made)
    assert not isinstance(caught.value.__cause__, (ZeroDivisionError, AttributeError))


class NoChannels(nn.Module):
    """A layer whose output has zero channels (``x[:, :0]``), beside the path to the output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :0]


class WithAnEmptyLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.empty = NoChannels()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        self.empty(features)
        return self.head(features.mean(dim=(2, 3)))


def test_a_layer_with_zero_channels_gets_a_clear_error():
    """Opened directly, or picked in the Explorer: an error naming the empty layer, no hook left
    (not torch's "cannot reshape tensor of 0 elements")."""
    torch.manual_seed(0)
    model, inputs = WithAnEmptyLayer().eval(), torch.randn(2, 1, 8, 8)
    before = model_snapshot(model)
    with deadline(30):
        with pytest.raises(ValueError, match=r"'empty' returned an empty tensor"):
            mv.FeatureMaps(model, inputs, layer="empty")
        with mv.Explorer(model, inputs) as explorer:
            explorer.layer = "empty"
            assert "'empty' returned an empty tensor" in explorer.error
    assert_unchanged(model, before)


@pytest.mark.parametrize("subject", FLOAT_INPUTS, ids=str)
def test_inputs_that_require_grad_are_left_untouched(subject: Subject):
    """The caller's leaf tensor keeps its values, its version, ``requires_grad`` and no
    ``.grad`` (gradients are taken on copies)."""
    model, inputs = make(subject)
    inputs.requires_grad_(True)
    values, version = inputs.detach().clone(), inputs._version
    made = finish(subject.build(model, inputs))
    if subject.drive is not None:
        subject.drive(made)
    close(made)
    assert inputs.grad is None, f"{subject} left a .grad on the inputs"
    assert inputs.requires_grad and inputs._version == version
    assert torch.equal(inputs.detach(), values)


# -- only the selected slice leaves the device --


def _target_device(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.device | None:
    device = kwargs.get("device")
    if device is None and args:
        first = args[0]
        if isinstance(first, (str, torch.device)):
            device = first
        elif isinstance(first, torch.Tensor):
            device = first.device
    return None if device is None else torch.device(device)


@contextlib.contextmanager
def moves_to_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[torch.Tensor]]:
    """Every tensor handed to ``.to(cpu)``, ``.cpu()`` or ``.numpy()`` while inside: on a GPU
    each would be a device-to-host copy (``.numpy()`` would fail). Recorded as detached copies."""
    moved: list[torch.Tensor] = []
    original_to, original_cpu, original_numpy = (
        torch.Tensor.to,
        torch.Tensor.cpu,
        torch.Tensor.numpy,
    )

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        target = _target_device(args, kwargs)
        if target is not None and target.type == "cpu":
            moved.append(self.detach().clone())
        return original_to(self, *args, **kwargs)

    def cpu(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        moved.append(self.detach().clone())
        return original_cpu(self, *args, **kwargs)

    def numpy(self: torch.Tensor, *args: Any, **kwargs: Any) -> np.ndarray:
        moved.append(self.detach().clone())
        return original_numpy(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "to", to)
        patch.setattr(torch.Tensor, "cpu", cpu)
        patch.setattr(torch.Tensor, "numpy", numpy)
        yield moved


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_feature_maps_move_only_the_selected_sample_and_channel(device, monkeypatch):
    """wire.as_float_tensor is where a payload leaves the device; what reaches it (and any other
    host copy) is the selected sample's channels and the selected channel, never the whole
    ``[N, C, H, W]`` activation."""
    model, inputs = make(next(s for s in SUBJECTS if s.id == "FeatureMaps"))
    model, inputs = model.to(device).eval(), inputs.to(device)
    view = mv.FeatureMaps(model, inputs, layer="features.0")
    maps = view.maps
    assert maps is not None and tuple(maps.shape) == (6, 6, 8, 8)
    with moves_to_host(monkeypatch) as moved:
        view.sample = 3
        view.channel = 4
    view.close()
    assert moved, "nothing reached the host: the payloads were not rebuilt"
    largest = max(tensor.numel() for tensor in moved)
    assert largest <= maps[0].numel(), f"a tensor of {largest} values left the device"
    assert any(torch.equal(t.float(), maps[3, 4].float().cpu()) for t in moved)
    assert any(torch.equal(t.float(), maps[3].float().cpu()) for t in moved)


@pytest.mark.parametrize(
    "subject",
    [s for s in SUBJECTS if s.id in ("Saliency[sync]", "HiddenStates", "Attention")],
    ids=str,
)
def test_selection_changes_move_no_more_than_is_drawn(subject: Subject, monkeypatch):
    """After a selection change, no tensor bigger than the largest picture drawn (before any
    downsampling) reaches the host."""
    model, inputs = make(subject)
    made = finish(subject.build(model, inputs))
    with moves_to_host(monkeypatch) as moved:
        made.sample = 1
        finish(made)
    drawn = max(math.prod(meta["original_shape"]) for meta in payload_metas(made))
    made.close()
    assert moved
    largest = max(tensor.numel() for tensor in moved)
    assert largest <= drawn, f"{subject}: {largest} values left the device to draw {drawn}"
