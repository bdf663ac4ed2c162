"""mv.attribute against captum (an independent implementation), IG completeness, model hygiene,
bad-input errors and progress / cancellation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture.attribution import METHODS, OPTIONS, Cancelled

from ._support import assert_unchanged, model_snapshot

# captum notes that it sets hooks on ReLU modules and that inputs did not require grad.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + x)  # the same in-place ReLU module, run twice


class ConvNet2d(nn.Module):
    """BatchNorm, a residual block and ReLU(inplace=True)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True)
        )
        self.block = Residual(8)
        self.pool = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(8, 12, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(48, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(self.pool(self.block(self.stem(x))))))


class ConvNet1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(2, 6, 5, padding=2),
            nn.BatchNorm1d(6),
            nn.ReLU(inplace=True),
            nn.Conv1d(6, 8, 3),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(4),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _with_running_stats(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Non-trivial BatchNorm statistics, then eval mode (captum runs the model as it is)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape) * 2 + 0.5)
    return model.eval()


@pytest.fixture
def conv2d() -> nn.Module:
    torch.manual_seed(0)
    return _with_running_stats(ConvNet2d(), (8, 3, 12, 12))


@pytest.fixture
def conv1d() -> nn.Module:
    torch.manual_seed(0)
    return _with_running_stats(ConvNet1d(), (8, 2, 20))


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


CASES = {
    "conv2d": (torch.Size([3, 3, 12, 12]), [3, 7, 1]),
    "conv1d": (torch.Size([3, 2, 20]), [0, 2, 3]),
    "mlp": (torch.Size([3, 6]), [2, 0, 1]),
}
CONV_LAYERS = {"conv2d": ["block", "stem.1", "conv"], "conv1d": ["features.3", "features.1"]}


def case(name: str, request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor, list[int]]:
    shape, target = CASES[name]
    model = request.getfixturevalue(name)
    torch.manual_seed(1)
    return model, torch.randn(shape), target


def assert_agrees(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Max abs difference <= 1e-5 of the attribution's scale (its largest magnitude)."""
    theirs = theirs.detach()
    assert ours.shape == theirs.shape
    assert not ours.requires_grad
    scale = theirs.abs().max()
    assert scale > 0
    difference = (ours - theirs).abs().max()
    assert difference <= 1e-5 * scale, f"max abs difference {difference:.3g}, scale {scale:.3g}"


# ---------------------------------------------------------------- agreement with captum


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("absolute", [True, False])
def test_saliency_matches_captum(name, absolute, request):
    model, x, target = case(name, request)
    theirs = Saliency(model).attribute(x, target=target, abs=absolute)
    assert_agrees(mv.attribute(model, x, target, "saliency", abs=absolute), theirs)


@pytest.mark.parametrize("name", list(CASES))
def test_grad_x_input_matches_captum(name, request):
    model, x, target = case(name, request)
    theirs = InputXGradient(model).attribute(x, target=target)
    assert_agrees(mv.attribute(model, x, target, "grad_x_input"), theirs)


@pytest.mark.parametrize("name", list(CASES))
def test_integrated_gradients_matches_captum(name, request):
    model, x, target = case(name, request)
    baseline = torch.full_like(x[:1], 0.25)
    theirs = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=target, n_steps=50, method="gausslegendre"
    )
    ours = mv.attribute(model, x, target, "integrated_gradients", steps=50, baseline=baseline)
    assert_agrees(ours, theirs)


@pytest.mark.parametrize(
    ("quadrature", "internal_batch_size"),
    [("gausslegendre", 7), ("riemann_trapezoid", None), ("riemann_middle", 12)],
)
def test_integrated_gradients_rules_and_batching_match_captum(
    conv2d, quadrature, internal_batch_size
):
    torch.manual_seed(2)
    x = torch.randn(3, 3, 12, 12)
    theirs = IntegratedGradients(conv2d).attribute(
        x,
        baselines=0.0,
        target=4,
        n_steps=20,
        method=quadrature,
        internal_batch_size=internal_batch_size,
    )
    ours = mv.attribute(
        conv2d,
        x,
        4,
        "integrated_gradients",
        steps=20,
        quadrature=quadrature,
        internal_batch_size=internal_batch_size,
    )
    assert_agrees(ours, theirs)


@pytest.mark.parametrize("name", ["conv2d", "conv1d"])
@pytest.mark.parametrize("relu", [True, False])
def test_grad_cam_matches_captum(name, relu, request):
    model, x, target = case(name, request)
    modules = dict(model.named_modules())
    for layer in CONV_LAYERS[name]:
        theirs = LayerGradCam(model, modules[layer]).attribute(
            x, target=target, relu_attributions=relu
        )
        ours = mv.attribute(model, x, target, "grad_cam", layer, relu=relu)
        assert_agrees(ours, theirs.squeeze(1))
        upsampled = mv.attribute(model, x, target, "grad_cam", layer, relu=relu, upsample=True)
        assert upsampled.shape == (x.shape[0], *x.shape[2:])
        assert_agrees(upsampled, LayerAttribution.interpolate(theirs, x.shape[2:]).squeeze(1))


def test_grad_cam_bilinear_upsampling_matches_interpolate(conv2d):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 12, 12)
    theirs = LayerGradCam(conv2d, conv2d.conv).attribute(x, target=5, relu_attributions=True)
    expected = LayerAttribution.interpolate(theirs, (12, 12), interpolate_mode="bilinear")
    ours = mv.attribute(
        conv2d, x, 5, "grad_cam", "conv", upsample=True, interpolate_mode="bilinear"
    )
    assert_agrees(ours, expected.squeeze(1))


@pytest.mark.parametrize("name", list(CASES))
def test_guided_backprop_matches_captum(name, request):
    model, x, target = case(name, request)
    theirs = GuidedBackprop(model).attribute(x, target=target)
    ours = mv.attribute(model, x, target, "guided_backprop")
    assert_agrees(ours, theirs)
    # And it is not simply the gradient: the clamping changed something.
    plain = mv.attribute(model, x, target, "saliency", abs=False)
    assert (ours - plain).abs().max() > 1e-3 * plain.abs().max()


@pytest.mark.parametrize(
    ("name", "window", "stride", "their_window"),
    [
        ("conv2d", (3, 3), 2, (3, 3, 3)),
        ("conv2d", (3, 4, 5), (3, 3, 2), (3, 4, 5)),
        ("conv1d", (4,), 3, (2, 4)),
        ("mlp", (2,), 1, (2,)),
    ],
)
def test_occlusion_matches_captum(name, window, stride, their_window, request):
    model, x, target = case(name, request)
    theirs = Occlusion(model).attribute(
        x, sliding_window_shapes=their_window, strides=stride, baselines=0.3, target=target
    )
    ours = mv.attribute(model, x, target, "occlusion", window=window, stride=stride, baseline=0.3)
    assert_agrees(ours, theirs)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("absolute", [True, False])
def test_smoothgrad_matches_captum_noise_tunnel(name, absolute, request):
    model, x, target = case(name, request)
    torch.manual_seed(5)
    theirs = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=6, stdevs=0.2, target=target, abs=absolute
    )
    # A generator seeded with 5 draws what the global generator draws after manual_seed(5).
    ours = mv.attribute(
        model, x, target, "smoothgrad", n_samples=6, stdev=0.2, seed=5, abs=absolute
    )
    assert_agrees(ours, theirs)


def test_smoothgrad_chunks_and_relative_noise_match_captum(conv2d):
    torch.manual_seed(4)
    x = torch.randn(1, 3, 12, 12)
    noise = 0.1
    stdev = noise * float(x.max() - x.min())
    torch.manual_seed(9)
    theirs = NoiseTunnel(Saliency(conv2d)).attribute(
        x, nt_type="smoothgrad", nt_samples=7, nt_samples_batch_size=3, stdevs=stdev, target=2
    )
    # Relative noise, the global generator (seed=None), three noisy copies per forward.
    torch.manual_seed(9)
    ours = mv.attribute(
        conv2d, x, 2, "smoothgrad", n_samples=7, noise=noise, seed=None, internal_batch_size=3
    )
    assert_agrees(ours, theirs)


def test_smoothgrad_is_reproducible_and_seed_dependent(conv2d):
    torch.manual_seed(4)
    x = torch.randn(2, 3, 12, 12)
    first = mv.attribute(conv2d, x, 1, "smoothgrad", n_samples=4)
    again = mv.attribute(conv2d, x, 1, "smoothgrad", n_samples=4)
    other = mv.attribute(conv2d, x, 1, "smoothgrad", n_samples=4, seed=1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


# ---------------------------------------------------------------- Integrated Gradients completeness


def test_integrated_gradients_completeness_on_the_trained_digits_cnn():
    # Within 1% at 64 steps for every one of 32 test digits, each scored for its true class.
    model = mv.demo.digits_cnn()
    images, labels = mv.demo.load_digits("test")
    x, target = images[:32], labels[:32]
    ours = mv.attribute(model, x, target, "integrated_gradients", steps=64)
    with torch.no_grad():
        rows = torch.arange(32)
        gap = model(x)[rows, target] - model(torch.zeros_like(x))[rows, target]
    sums = ours.reshape(32, -1).sum(dim=1)
    assert (gap.abs() > 1).all()
    assert ((sums - gap).abs() <= 0.01 * gap.abs()).all()


def test_integrated_gradients_completeness_is_exact_on_a_smooth_model():
    # Without ReLU kinks Gauss-Legendre quadrature converges fast: a sharp check of the rule.
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3)
    )
    x = torch.randn(8, 6) * 2
    baseline = torch.randn(6)
    ours = mv.attribute(model, x, 1, "integrated_gradients", steps=64, baseline=baseline)
    with torch.no_grad():
        gap = model(x)[:, 1] - model(baseline[None])[:, 1]
    sums = ours.sum(dim=1)
    assert ((sums - gap).abs() <= 1e-4 * gap.abs().max()).all()


# ---------------------------------------------------------------- targets, shapes, devices


def test_targets_index_per_sample_callable_and_predicted(conv2d):
    torch.manual_seed(6)
    x = torch.randn(3, 3, 12, 12)
    with torch.no_grad():
        predicted = conv2d(x).argmax(dim=1)
    for method in ("saliency", "integrated_gradients", "occlusion", "grad_cam", "smoothgrad"):
        layer = "conv" if method == "grad_cam" else None
        by_index = mv.attribute(conv2d, x, predicted.tolist(), method, layer, progress=False)
        by_none = mv.attribute(conv2d, x, None, method, layer, progress=False)
        assert torch.equal(by_none, by_index), method
        # A callable sees batches holding several copies of each sample, so it works row-wise.
        by_callable = mv.attribute(conv2d, x, lambda out: out[:, 6], method, layer, progress=False)
        by_six = mv.attribute(conv2d, x, 6, method, layer, progress=False)
        assert torch.allclose(by_callable, by_six, rtol=0, atol=1e-7 * by_six.abs().max()), method
    one = mv.attribute(conv2d, x, 4, "saliency")
    assert torch.equal(one, mv.attribute(conv2d, x, torch.tensor([4, 4, 4]), "saliency"))


def test_one_sample_without_batch_axis(conv2d):
    torch.manual_seed(7)
    x = torch.randn(3, 12, 12)
    for method in METHODS:
        layer = "block" if method == "grad_cam" else None
        single = mv.attribute(conv2d, x, 2, method, layer, progress=False)
        batched = mv.attribute(conv2d, x[None], 2, method, layer, progress=False)
        assert torch.equal(single, batched[0]), method
    cam = mv.attribute(conv2d, x, 2, "grad_cam", "block", upsample=True)
    assert cam.shape == (12, 12)


# ---------------------------------------------------------------- model hygiene


def every_method_call(model: nn.Module, x: torch.Tensor, layer: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for method in METHODS:
        options: dict[str, Any] = {"method": method, "progress": False}
        if method == "grad_cam":
            options["layer"] = layer
        if method == "smoothgrad":
            options["n_samples"] = 3
        if method == "integrated_gradients":
            options.update(steps=6, internal_batch_size=2 * x.shape[0])
        calls.append(options)
    return calls


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", ["conv2d", "conv1d"])
def test_model_is_left_as_it_was_after_every_method(name, train, request):
    model, x, target = case(name, request)
    model.train(train)
    norm = model.block.bn1 if name == "conv2d" else model.features[1]
    norm.train(not train)  # mixed flags, each to be restored
    for parameter in list(model.parameters())[::2]:
        parameter.grad = torch.randn_like(parameter)  # a user's pending gradients
    list(model.parameters())[1].requires_grad_(False)
    before = model_snapshot(model)
    x_before = x.clone()
    for call in every_method_call(model, x, CONV_LAYERS[name][0]):
        result = mv.attribute(model, x, target, **call)
        assert not result.requires_grad and result.grad_fn is None
        assert result.device == x.device and result.dtype == x.dtype
        assert_unchanged(model, before)
    assert torch.equal(x, x_before) and not x.requires_grad


def test_attribution_runs_in_eval_mode(conv2d):
    # In train mode BatchNorm would use batch statistics: the result must not depend on the mode.
    torch.manual_seed(8)
    x = torch.randn(2, 3, 12, 12)
    expected = mv.attribute(conv2d.eval(), x, 1, "grad_x_input")
    assert torch.equal(mv.attribute(conv2d.train(), x, 1, "grad_x_input"), expected)


@pytest.mark.parametrize("method", METHODS)
def test_hooks_removed_and_model_restored_when_the_model_fails(method, conv2d):
    def explode(module: nn.Module, args: Any, output: Any) -> None:
        raise RuntimeError("boom")

    conv2d.train()
    handle = conv2d.head[2].register_forward_hook(explode)
    before = model_snapshot(conv2d)
    layer = "conv" if method == "grad_cam" else None
    with pytest.raises(mv.InputShapeError, match="boom"):
        mv.attribute(conv2d, torch.randn(2, 3, 12, 12), 1, method, layer, progress=False)
    assert_unchanged(conv2d, before)
    handle.remove()


# ---------------------------------------------------------------- bad input


def test_target_out_of_range_names_the_valid_range(conv2d):
    x = torch.randn(2, 3, 12, 12)
    for method in METHODS:
        layer = "conv" if method == "grad_cam" else None
        with pytest.raises(ValueError, match=r"valid targets are 0\.\.9"):
            mv.attribute(conv2d, x, 10, method, layer, progress=False)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        mv.attribute(conv2d, x, [1, -1], "saliency")


def test_bad_targets(conv2d):
    x = torch.randn(2, 3, 12, 12)
    with pytest.raises(ValueError, match="3 target indices for a batch of 2"):
        mv.attribute(conv2d, x, [1, 2, 3])
    with pytest.raises(TypeError, match="integer"):
        mv.attribute(conv2d, x, 1.5)
    with pytest.raises(ValueError, match="one score per sample"):
        mv.attribute(conv2d, x, lambda out: out[:, 1].sum(), "occlusion")


def test_grad_cam_layer_errors_name_the_conv_like_layers(conv2d):
    x = torch.randn(2, 3, 12, 12)
    problems = [("head.2", "head.2"), ("nope", "unknown layer 'nope'"), (None, "needs layer=")]
    for layer, problem in problems:
        with pytest.raises(ValueError, match=problem) as error:
            mv.attribute(conv2d, x, 1, "grad_cam", layer)
        message = str(error.value)
        assert "Valid layers for these inputs: stem, stem.0, stem.1, stem.2, block" in message
        assert "head.1" not in message.split("Valid layers")[1]  # Flatten: [N, 48]


def test_integer_inputs_name_the_fix(conv2d):
    tokens = torch.randint(0, 5, (2, 3, 12, 12))
    for method in METHODS:
        with pytest.raises(TypeError, match="embedding layer's output"):
            mv.attribute(conv2d, tokens, 1, method, "conv")


def test_unknown_method_lists_the_methods(conv2d):
    with pytest.raises(ValueError, match="valid methods are: saliency, grad_x_input, smoothgrad"):
        mv.attribute(conv2d, torch.randn(1, 3, 12, 12), 1, "lime")


def test_unknown_option_lists_that_methods_options(conv2d):
    x = torch.randn(1, 3, 12, 12)
    with pytest.raises(TypeError, match="'n_steps'.*steps, baseline, internal_batch_size"):
        mv.attribute(conv2d, x, 1, "integrated_gradients", n_steps=10)
    with pytest.raises(TypeError, match="its options are: none"):
        mv.attribute(conv2d, x, 1, "grad_x_input", abs=True)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        mv.attribute(conv2d, x, 1, "integrated_gradients", steps=0)
    with pytest.raises(ValueError, match="valid rules: gausslegendre"):
        mv.attribute(conv2d, x, 1, "integrated_gradients", quadrature="simpson")
    with pytest.raises(ValueError, match="larger than one sample"):
        mv.attribute(conv2d, x, 1, "occlusion", window=(13, 13))
    assert set(OPTIONS) == set(METHODS)


def test_wrong_input_shape_names_the_expected_one(conv2d):
    with pytest.raises(mv.InputShapeError, match=r"\[N, 3, H, W\]"):
        mv.attribute(conv2d, torch.randn(2, 1, 12, 12), 1)


# ---------------------------------------------------------------- progress and cancellation


def test_progress_callable_is_called_after_each_chunk(conv2d):
    calls: list[tuple[int, int]] = []
    x = torch.randn(2, 3, 12, 12)
    mv.attribute(
        conv2d,
        x,
        1,
        "integrated_gradients",
        steps=10,
        internal_batch_size=6,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 3 steps x 2 samples per forward
    calls.clear()
    mv.attribute(conv2d, x, 1, "saliency", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]
    calls.clear()
    mv.attribute(
        conv2d, x, 1, "occlusion", window=(6, 6), stride=6, perturbations_per_eval=3,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("integrated_gradients", {"steps": 12, "internal_batch_size": 2}),
        ("smoothgrad", {"n_samples": 5, "internal_batch_size": 2}),
        ("occlusion", {"window": (2, 2), "perturbations_per_eval": 4}),
        ("guided_backprop", {}),
    ],
)
def test_cancelled_aborts_cleanly(conv2d, method, options):
    conv2d.train()
    before = model_snapshot(conv2d)
    seen: list[int] = []

    def cancel(done: int, total: int) -> None:
        seen.append(done)
        if done == min(2, total):
            raise Cancelled

    with pytest.raises(Cancelled):
        mv.attribute(conv2d, torch.randn(2, 3, 12, 12), 1, method, progress=cancel, **options)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) <= 2
    assert_unchanged(conv2d, before)


def test_automatic_progress_is_silent_when_quick_and_shown_when_asked(conv2d, capsys):
    x = torch.randn(1, 3, 12, 12)
    mv.attribute(conv2d, x, 1, "integrated_gradients", steps=4, internal_batch_size=1)
    assert capsys.readouterr().err == ""
    mv.attribute(
        conv2d, x, 1, "integrated_gradients", steps=4, internal_batch_size=1, progress=True
    )
    assert "attribute integrated_gradients" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress must be"):
        mv.attribute(conv2d, x, 1, progress="yes")


def test_large_requests_are_chunked_automatically(conv2d, monkeypatch):
    from modelviz_widgets.capture import attribution_gradients

    x = torch.randn(2, 3, 12, 12)
    whole = mv.attribute(conv2d, x, 1, "integrated_gradients", steps=10)
    monkeypatch.setattr(attribution_gradients, "AUTO_CHUNK_ELEMENTS", 3 * 12 * 12 * 8)
    calls: list[tuple[int, int]] = []
    chunked = mv.attribute(
        conv2d, x, 1, "integrated_gradients", steps=10, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (3, 3)  # 8 rows per forward: 4 steps of 2 samples
    assert_agrees(chunked, whole)


def test_float64_models_keep_their_dtype(mlp):
    model = mlp.double()
    x = torch.randn(4, 6, dtype=torch.float64)
    theirs = IntegratedGradients(model).attribute(x, target=1, n_steps=16)
    ours = mv.attribute(model, x, 1, "integrated_gradients", steps=16)
    assert ours.dtype == torch.float64
    assert_agrees(ours, theirs)


@pytest.mark.parametrize(
    "method,options",
    [("integrated_gradients", {"steps": 8}), ("smoothgrad", {"n_samples": 4})],
)
def test_non_contiguous_inputs_give_the_same_attribution(method, options):
    torch.manual_seed(12)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    expected = mv.attribute(model, x, 1, method=method, **options)
    channels_last = x.to(memory_format=torch.channels_last)
    permuted = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    for layout in (channels_last, permuted):
        assert not layout.is_contiguous()
        got = mv.attribute(model, layout, 1, method=method, **options)
        torch.testing.assert_close(got, expected)
