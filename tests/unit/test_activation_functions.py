"""ActivationFunctions and capture.stats: curves against torch.nn.functional, derivatives against
closed forms, histograms and region shares against numpy on pre-activations captured by a
hand-written forward pre-hook."""

from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import stats

from ._support import FrontEnd, SmallCNN, assert_unchanged, forward_with, model_snapshot

X = torch.linspace(-6, 6, 481, dtype=torch.float64)


def closed_form_derivative(name: str, x: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    """Derivatives written out by hand (not autograd)."""
    s = 1 / (1 + torch.exp(-x))
    if name == "sigmoid":
        return s * (1 - s)
    if name == "tanh":
        return 1 - torch.tanh(x) ** 2
    if name == "relu":
        return (x > 0).to(x.dtype)
    if name == "leaky_relu":
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))
    if name == "gelu":
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
        return cdf + x * pdf
    if name == "silu":
        return s * (1 + x * (1 - s))
    raise AssertionError(name)


REFERENCE = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "gelu": F.gelu,
    "silu": F.silu,
}


class Mixed(nn.Module):
    """One activation of each kind, fed by linear layers so the pre-activations differ."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 32)
        self.act1 = nn.Sigmoid()
        self.fc2 = nn.Linear(32, 32)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Linear(32, 32)
        self.act3 = nn.LeakyReLU(0.2)
        self.fc4 = nn.Linear(32, 32)
        self.act4 = nn.GELU()
        self.fc5 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.fc1(x) * 4)
        x = self.act2(self.fc2(x) * 3)
        x = self.act3(self.fc3(x))
        return self.fc5(self.act4(self.fc4(x)))


@pytest.fixture
def mixed() -> Mixed:
    torch.manual_seed(3)
    return Mixed()


@pytest.fixture
def rows() -> torch.Tensor:
    torch.manual_seed(4)
    return torch.randn(50, 6)


def independent_pre_activation(model: nn.Module, inputs: torch.Tensor, name: str) -> np.ndarray:
    """The layer's input recorded by a forward pre-hook written here, in eval mode."""
    module = dict(model.named_modules())[name]
    seen = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    forward_with(model, inputs, [handle])
    return seen[-1].double().numpy().ravel()


@pytest.mark.parametrize("name", stats.FUNCTIONS)
def test_curves_equal_torch_functional_and_derivatives_the_closed_form(name):
    values, derivative = stats.curve(name, X)
    torch.testing.assert_close(values, REFERENCE[name](X), rtol=0, atol=1e-12)
    torch.testing.assert_close(derivative, closed_form_derivative(name, X), rtol=0, atol=1e-9)


def test_leaky_slope_and_tanh_gelu_follow_the_module():
    leaky = stats.activation_of(nn.LeakyReLU(0.3))
    assert leaky is not None and leaky.negative_slope == pytest.approx(0.3)
    values, derivative = stats.curve(leaky, X)
    torch.testing.assert_close(values, F.leaky_relu(X, 0.3))
    torch.testing.assert_close(derivative, closed_form_derivative("leaky_relu", X, 0.3))
    gelu = stats.activation_of(nn.GELU(approximate="tanh"))
    assert gelu is not None
    torch.testing.assert_close(stats.curve(gelu, X)[0], F.gelu(X, approximate="tanh"))
    assert stats.activation_of(nn.Linear(2, 2)) is None


def test_bare_curves_without_a_model():
    view = mv.ActivationFunctions()
    try:
        shown = view.current
        x = torch.from_numpy(shown["x"]).double()
        for row, name in enumerate(stats.FUNCTIONS):
            np.testing.assert_allclose(shown["curves"][row], REFERENCE[name](x).numpy(), atol=1e-6)
            np.testing.assert_allclose(
                shown["derivatives"][row], closed_form_derivative(name, x).numpy(), atol=1e-5
            )
        assert view.function == "relu" and view.layer == "" and view.layer_options == []
        assert "histogram" not in shown
        view.function = "tanh"
        np.testing.assert_allclose(view.current["curve"], np.tanh(shown["x"]), atol=1e-6)
        assert "tanh" in view.summary
        assert view.figures[0].marks[2].opacities[stats.FUNCTIONS.index("tanh")] == 1.0
        view.show_derivative = False
        assert view.figures[0].marks[1].visible is False
    finally:
        view.close()


def test_histogram_counts_equal_numpy_on_independently_captured_inputs(cnn, images):
    # features.2 is ReLU(inplace=True) after BatchNorm: its input must be copied before it runs.
    with mv.ActivationFunctions(cnn, images) as view:
        assert [o["name"] for o in view.layer_options] == ["features.2", "features.5"]
        assert view.layer == "features.2" and view.function == "relu"
        reference = independent_pre_activation(cnn, images, "features.2")
        assert (reference < 0).any(), "the test needs negative pre-activations"
        edges = np.linspace(-6, 6, 61)
        counts, _ = np.histogram(reference, bins=edges)
        shown = view.current
        np.testing.assert_array_equal(shown["histogram"], counts)
        np.testing.assert_allclose(shown["bin_edges"], edges, atol=1e-6)
        below, above = (reference < -6).sum(), (reference > 6).sum()
        np.testing.assert_array_equal(shown["out_of_range"], [below, above, 0])
        assert float(shown["region_fraction"]) == pytest.approx((reference <= 0).mean(), abs=1e-7)
        assert f"{100 * (reference <= 0).mean():.1f}% in the dead region" in view.summary
        np.testing.assert_array_equal(view.figures[0].marks[0].y, counts)


def test_out_of_range_values_are_counted(cnn):
    images = torch.randn(4, 1, 8, 8) * 40
    with mv.ActivationFunctions(cnn, images, layer="features.5") as view:
        reference = independent_pre_activation(cnn, images, "features.5")
        below, above = int((reference < -6).sum()), int((reference > 6).sum())
        assert below > 0 and above > 0
        np.testing.assert_array_equal(view.current["out_of_range"], [below, above, 0])
        assert f"{below:,} below -6 and {above:,} above 6" in view.summary
        assert view.current["histogram"].sum() + below + above == reference.size


@pytest.mark.parametrize(
    ("layer", "function", "region"),
    [
        ("act1", "sigmoid", "saturated"),
        ("act2", "tanh", "saturated"),
        ("act3", "leaky_relu", "dead"),
    ],
)
def test_region_fractions_equal_numpy(mixed, rows, layer, function, region):
    with mv.ActivationFunctions(mixed, rows, layer=layer) as view:
        assert view.function == function
        x = independent_pre_activation(mixed, rows, layer)
        if function == "sigmoid":
            s = 1 / (1 + np.exp(-x))
            expected = (s * (1 - s) < 0.05 * 0.25).mean()
        elif function == "tanh":
            expected = (1 - np.tanh(x) ** 2 < 0.05).mean()
        else:
            expected = (x < 0).mean()
        assert 0 < expected < 1, "the test needs values on both sides of the region"
        assert float(view.current["region_fraction"]) == pytest.approx(expected, abs=1e-7)
        assert f"in the {region} region" in view.summary
        # The leaky curve drawn is the layer's own (slope 0.2).
        if function == "leaky_relu":
            np.testing.assert_allclose(
                view.current["curve"], F.leaky_relu(torch.from_numpy(view.current["x"]), 0.2)
            )


def test_gelu_has_no_region(mixed, rows):
    with mv.ActivationFunctions(mixed, rows, layer="act4") as view:
        assert view.function == "gelu"
        assert "region_fraction" not in view.current
        assert "no saturated or dead region" in view.summary


def test_layer_change_from_the_browser_follows_the_type_and_redraws(mixed, rows):
    with mv.ActivationFunctions(mixed, rows) as view:
        front = FrontEnd(view.core)
        before = view.core.seq
        front.set(layer="act2")
        assert view.layer == "act2" and view.function == "tanh"
        assert view.core.seq > before
        expected = np.histogram(
            independent_pre_activation(mixed, rows, "act2"), np.linspace(-6, 6, 61)
        )
        np.testing.assert_array_equal(view.current["histogram"], expected[0])
        # Another function over the same values: the share is that function's.
        front.set(function="relu")
        x = independent_pre_activation(mixed, rows, "act2")
        assert float(view.current["region_fraction"]) == pytest.approx((x <= 0).mean(), abs=1e-7)
        assert any("seq" in update for update in front.updates())


def test_model_untouched_and_hooks_removed(cnn, images):
    cnn.train()
    before = model_snapshot(cnn)
    for _ in range(5):
        with mv.ActivationFunctions(cnn, images) as view:
            view.layer = "features.5"
    assert_unchanged(cnn, before)


def test_closed_widget_releases_the_model(images):
    model = SmallCNN()
    view = mv.ActivationFunctions(model, images)
    ref = weakref.ref(model)
    view.close()
    del model, view
    gc.collect()
    assert ref() is None


def test_bad_input_is_refused_clearly(cnn, images):
    plain = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="no activation layer.*ReLU"):
        mv.ActivationFunctions(plain, torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"unknown layer 'features\.9'.*features\.2, features\.5"):
        mv.ActivationFunctions(cnn, images, layer="features.9")
    with pytest.raises(ValueError, match="inputs are needed"):
        mv.ActivationFunctions(cnn)
    with pytest.raises(ValueError, match="need a model"):
        mv.ActivationFunctions(inputs=images)
    with pytest.raises(TypeError, match="unexpected keyword"):
        mv.ActivationFunctions(colour="red")
    with pytest.raises(ValueError, match="unknown activation function 'softsign'.*sigmoid"):
        stats.check_function("softsign")
    with (
        mv.ActivationFunctions(cnn, images) as view,
        pytest.raises(ValueError, match="valid layer names are: features.2, features.5"),
    ):
        view.layer = "features.0"
