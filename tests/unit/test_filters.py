"""Filters driven as the browser drives it, checked against the modules' own weight tensors,
torch.linalg.vector_norm, np.histogram and scikit-learn run here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets
from ipywidgets.widgets.widget import _instances
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import wire

from ._support import FrontEnd, assert_unchanged, model_snapshot


def weight(model: nn.Module, layer: str) -> torch.Tensor:
    return dict(model.named_modules())[layer].weight.detach().clone()


def reference_norms(model: nn.Module, layer: str) -> torch.Tensor:
    w = weight(model, layer)
    return torch.stack([torch.linalg.vector_norm(w[i]) for i in range(w.shape[0])])


def pca_matches(points: np.ndarray, expected: np.ndarray) -> None:
    for component in range(2):
        sign = np.sign(points[:, component] @ expected[:, component])
        np.testing.assert_allclose(sign * points[:, component], expected[:, component], atol=1e-4)


@pytest.fixture
def photo() -> nn.Module:
    return mv.demo.photo_cnn()


def test_opens_on_the_first_conv_layer_one_input_channel_at_a_time(cnn):
    filters = mv.Filters(cnn)
    core = filters.core
    assert filters.layer == "features.0" and not core.rgb
    assert [option["name"] for option in core.layer_options] == ["features.0", "features.4"]
    assert core.n_filters == 6 and core.n_input_channels == 1
    w = weight(cnn, "features.0")
    np.testing.assert_array_equal(filters.current["grid"], w[:, 0].numpy())
    np.testing.assert_array_equal(filters.current["filter"], w[0, 0].numpy())
    decoded = wire.decode(core.filter_data, core.filter_meta)
    step = (core.filter_meta["vmax"] - core.filter_meta["vmin"]) / 254
    assert np.abs(decoded - w[0, 0].numpy()).max() <= step / 2 + 1e-6
    assert all(value.dtype == np.float32 for value in filters.current.values())
    filters.close()


def test_three_input_channels_are_drawn_as_rgb(photo):
    with mv.Filters(photo) as filters:
        assert filters.core.rgb and filters.core.grid_meta["rgb"]
        w = weight(photo, "features.conv1")
        np.testing.assert_array_equal(filters.current["grid"], w.numpy())  # [12, 3, 3, 3]
        filters.filter = 7
        np.testing.assert_array_equal(filters.current["filter"], w[7].numpy())


def test_norms_and_sort_order_from_the_browser(cnn):
    filters = mv.Filters(cnn, layer="features.4")
    front = FrontEnd(filters.core)
    norms = reference_norms(cnn, "features.4")
    np.testing.assert_allclose(filters.current["norms"], norms.numpy(), rtol=1e-6)
    front.set(sort="norm")
    expected_order = sorted(range(8), key=lambda i: -float(norms[i]))
    assert filters.current["order"].tolist() == expected_order
    w = weight(cnn, "features.4")
    np.testing.assert_array_equal(filters.current["grid"], w[expected_order, 0].numpy())
    updates = front.updates()
    assert len(front.messages) == len(updates) == 1  # one comm message, no echo
    assert {"grid_data", "order_data"} <= set(updates[0])
    front.set(sort="index")
    assert filters.current["order"].tolist() == list(range(8))


def test_input_channel_from_the_browser_republishes_the_grid_and_filter(cnn):
    filters = mv.Filters(cnn, layer="features.4")
    front = FrontEnd(filters.core)
    front.set(input_channel=5, filter=2)
    w = weight(cnn, "features.4")
    np.testing.assert_array_equal(filters.current["grid"], w[:, 5].numpy())
    np.testing.assert_array_equal(filters.current["filter"], w[2, 5].numpy())
    assert filters.core.filter_meta["input_channel"] == 5
    assert filters.core.filter_meta["norm"] == pytest.approx(
        float(reference_norms(cnn, "features.4")[2])
    )
    with pytest.raises(Exception, match=r"input_channel 6 is out of range; valid values are 0..5"):
        filters.input_channel = 6


def test_histograms_equal_np_histogram_with_the_same_edges(cnn):
    filters = mv.Filters(cnn, bins=12)
    front = FrontEnd(filters.core)
    front.set(layer="features.4")
    module = dict(cnn.named_modules())["features.4"]
    for key, tensor in (("weight", module.weight), ("bias", module.bias)):
        values = tensor.detach().numpy().ravel()
        edges = np.linspace(values.min(), values.max(), 13)
        counts, _ = np.histogram(values, bins=edges)
        np.testing.assert_allclose(filters.current[f"{key}_edges"], edges, rtol=1e-6)
        np.testing.assert_array_equal(filters.current[f"{key}_counts"], counts)
    np.testing.assert_array_equal(filters.weight_bars.y, filters.current["weight_counts"])
    weights = module.weight.detach().numpy().ravel()
    edges = np.linspace(weights.min(), weights.max(), 13)
    np.testing.assert_allclose(filters.weight_bars.x, (edges[:-1] + edges[1:]) / 2, rtol=1e-6)
    assert filters.current["weight_counts"].sum() == module.weight.numel()
    assert filters.current["grid"].shape == (8, 3, 3)  # the core followed the browser too


def test_a_layer_without_bias_has_an_empty_bias_histogram():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False))
    with mv.Filters(model) as filters:
        assert filters.current["bias_counts"].size == 0
        assert "none" in filters.bias_figure.title


def test_projection_equals_sklearn_pca_and_tsne(cnn):
    filters = mv.Filters(cnn, layer="features.4")
    flat = weight(cnn, "features.4").reshape(8, -1).double().numpy()
    pca_matches(
        filters.current["projection"], PCA(n_components=2, random_state=0).fit_transform(flat)
    )
    np.testing.assert_array_equal(filters.scatter.x, filters.current["projection"][:, 0])
    np.testing.assert_allclose(filters.scatter.color, reference_norms(cnn, "features.4"), rtol=1e-6)
    FrontEnd(filters.core).set(projection="tsne")
    # 8 filters: the perplexity is clamped to (8 - 1) / 3.
    expected = TSNE(
        n_components=2, perplexity=7 / 3, init="pca", learning_rate="auto", random_state=0
    ).fit_transform(flat)
    np.testing.assert_allclose(filters.current["projection"], expected, rtol=1e-4, atol=1e-4)
    assert filters.scatter_figure.title.startswith("TSNE")
    # Hover names the filter (the point's index) and its norm (the colour); a click selects.
    assert filters.scatter.interactions == {"click": "select", "hover": "tooltip"}
    assert filters.scatter.tooltip.fields == ["index", "color"]
    assert filters.scatter.tooltip.labels == ["filter", "norm"]


def test_clicking_a_scatter_point_selects_the_filter_and_back(cnn):
    filters = mv.Filters(cnn, layer="features.4")
    front = FrontEnd(filters.core)
    filters.scatter.selected = [6]  # what bqplot sets on a click
    assert filters.filter == 6
    np.testing.assert_array_equal(
        filters.current["filter"], weight(cnn, "features.4")[6, 0].numpy()
    )
    assert any("filter_data" in update for update in front.updates())
    front.set(filter=3)
    assert list(filters.scatter.selected) == [3]
    filters.scatter.selected = None  # clicking the background keeps the selection
    assert filters.filter == 3
    filters.layer = "features.0"  # fewer filters: the selection is clamped and still shown
    assert filters.filter == 3 and list(filters.scatter.selected) == [3]


def test_conv1d_filters_are_one_row_strips():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 5, 7), nn.ReLU(), nn.Conv1d(5, 3, 3))
    with mv.Filters(model, input_channel=1) as filters:
        w = model[0].weight.detach()
        assert filters.current["grid"].shape == (5, 1, 7)
        np.testing.assert_array_equal(filters.current["grid"][:, 0], w[:, 1].numpy())
        assert filters.current["filter"].shape == (1, 7)
        filters.layer = "2"
        assert filters.core.n_input_channels == 5 and filters.input_channel == 1


def test_too_few_filters_to_project_are_said_not_raised():
    model = nn.Sequential(nn.Conv2d(1, 1, 3))
    with mv.Filters(model) as filters:
        assert filters.current["projection"].shape == (0, 2)
        assert "at least 2" in filters.scatter_figure.title


def test_bad_layers_list_the_valid_conv_layers(cnn):
    with pytest.raises(ValueError, match=r"no convolution layer"):
        mv.Filters(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(
        ValueError,
        match=r"unknown layer 'nope'; valid convolution layers are: features.0, features.4",
    ):
        mv.Filters(cnn, layer="nope")
    with pytest.raises(
        ValueError,
        match=r"'features.1' is a BatchNorm2d, not a convolution; valid .*features.0, features.4",
    ):
        mv.Filters(cnn, layer="features.1")
    filters = mv.Filters(cnn)
    with pytest.raises(ValueError, match="valid convolution layers are: features.0, features.4"):
        filters.layer = "classifier.2"
    assert filters.layer == "features.0"
    with pytest.raises(traitlets.TraitError, match=r"'pca', 'tsne'"):
        mv.Filters(cnn, projection="umap")
    with pytest.raises(TypeError, match="channel"):
        mv.Filters(cnn, channel=2)
    with pytest.raises(TypeError):
        mv.Filters(nn.Linear(2, 2).weight)  # type: ignore[arg-type]


def test_reading_weights_never_changes_the_model(cnn):
    cnn.train()
    cnn.features[0].weight.requires_grad_(False)
    cnn(torch.randn(2, 1, 8, 8)).sum().backward()  # some parameters hold a .grad
    before = model_snapshot(cnn)
    filters = mv.Filters(cnn, projection="tsne")
    front = FrontEnd(filters.core)
    front.set(layer="features.4", sort="norm", input_channel=2, filter=5)
    filters.scatter.selected = [1]
    filters.refresh()
    filters.close()
    assert_unchanged(cnn, before)


def test_refresh_follows_weights_changed_by_training(cnn):
    filters = mv.Filters(cnn)
    with torch.no_grad():
        cnn.features[0].weight.mul_(2)
    filters.refresh()
    np.testing.assert_array_equal(filters.current["grid"], weight(cnn, "features.0")[:, 0].numpy())
    flat = weight(cnn, "features.0").reshape(6, -1).double().numpy()
    pca_matches(filters.current["projection"], PCA(n_components=2).fit_transform(flat))
    np.testing.assert_allclose(
        filters.current["norms"], reference_norms(cnn, "features.0"), rtol=1e-6
    )


def test_close_leaves_no_widget_of_the_view_in_the_registry(cnn):
    before = set(_instances)
    filters = mv.Filters(cnn)
    created = set(_instances) - before
    assert len(created) > 10  # core, figures, marks, scales, axes, tooltip, boxes, layouts
    filters.close()
    assert not (set(_instances) & created), [
        type(_instances[k]).__name__ for k in set(_instances) & created
    ]
    assert filters.core._model is None
