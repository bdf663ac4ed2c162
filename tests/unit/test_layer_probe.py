"""LayerProbe and capture.probe: accuracies against the same scikit-learn pipeline fitted here on
activations captured by hand-written forward hooks, the scatter against sklearn PCA."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import probe

from ._support import FrontEnd, SmallCNN, assert_unchanged, forward_with, model_snapshot

LAYERS = ["features.0", "features.4", "classifier.2"]


@pytest.fixture
def data() -> tuple[SmallCNN, torch.Tensor, np.ndarray]:
    torch.manual_seed(0)
    model = SmallCNN(n_classes=3)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 1, 8, 8))  # real BatchNorm statistics
    labels = np.repeat(np.arange(3), 20)
    torch.manual_seed(5)
    # Class-dependent images, so probes score above chance.
    images = torch.randn(60, 1, 8, 8) * 0.7 + torch.from_numpy(labels).float()[:, None, None, None]
    return model, images, labels


def independent_features(model: nn.Module, inputs: torch.Tensor, names: list[str]) -> dict:
    """Each layer's output, flattened, recorded by forward hooks written here, in eval mode."""
    modules = dict(model.named_modules())
    seen: dict[str, np.ndarray] = {}
    handles = [
        modules[name].register_forward_hook(
            lambda m, a, out, name=name: seen.__setitem__(
                name, out.detach().clone().reshape(out.shape[0], -1).double().numpy()
            )
        )
        for name in names
    ]
    forward_with(model, inputs, handles)
    return seen


def reference_accuracy(features, labels, estimator, seed=0, test_size=0.25) -> float:
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=labels)
    estimator.fit(features[train], labels[train])
    return float(estimator.score(features[test], labels[test]))


def test_default_layers_are_conv_and_linear(data):
    model, images, labels = data
    with mv.LayerProbe(model, images, labels) as view:
        assert view.layers == LAYERS
        assert view.layer == "features.0"
        view.wait(60)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        (
            None,
            lambda: Pipeline([("s", StandardScaler()), ("c", LogisticRegression(max_iter=1000))]),
        ),
        ("svm", lambda: Pipeline([("s", StandardScaler()), ("c", LinearSVC(random_state=0))])),
        ("tree", lambda: DecisionTreeClassifier(random_state=0)),
    ],
)
def test_accuracies_equal_the_same_pipeline_fitted_here(data, name, make):
    model, images, labels = data
    features = independent_features(model, images, LAYERS)
    expected = {layer: reference_accuracy(features[layer], labels, make()) for layer in LAYERS}
    with mv.LayerProbe(model, images, labels, estimator=name) as view:
        view.wait(60)
        assert view.progress == 1.0
        assert view.accuracies == pytest.approx(expected, abs=0)
        np.testing.assert_allclose(
            view.current["accuracy"], [expected[n] for n in LAYERS], atol=1e-7
        )
        np.testing.assert_allclose(view.figures[0].marks[0].y, [expected[n] for n in LAYERS])
        assert max(expected.values()) > 1 / 3 + 0.1, "the test data should be separable"


def test_estimator_object_and_change_from_the_browser_refit(data):
    model, images, labels = data
    features = independent_features(model, images, LAYERS)
    knn = KNeighborsClassifier(n_neighbors=3)
    with mv.LayerProbe(model, images, labels, estimator=knn) as view:
        view.wait(60)
        assert view.estimator == "custom"
        assert view.core.estimator_options == ["logistic", "svm", "tree", "custom"]
        expected = {
            n: reference_accuracy(features[n], labels, KNeighborsClassifier(3)) for n in LAYERS
        }
        assert view.accuracies == pytest.approx(expected, abs=0)
        front = FrontEnd(view.core)
        front.set(estimator="tree")
        view.wait(60)
        tree = {
            n: reference_accuracy(features[n], labels, DecisionTreeClassifier(random_state=0))
            for n in LAYERS
        }
        assert view.accuracies == pytest.approx(tree, abs=0)
        assert view.progress == 1.0
        assert "tree probes" in view.summary


def test_scatter_is_pca_of_the_selected_layer_up_to_sign(data):
    model, images, labels = data
    features = independent_features(model, images, LAYERS)
    with mv.LayerProbe(model, images, labels) as view:
        for layer in ("features.0", "classifier.2"):
            view.layer = layer
            expected = PCA(n_components=2).fit_transform(features[layer])
            shown = view.current["points"].astype(np.float64)
            signs = np.sign((shown * expected).sum(axis=0))
            np.testing.assert_allclose(
                shown, expected * signs, rtol=1e-4, atol=1e-4 * np.abs(expected).max()
            )
            scatter = view.figures[1].marks[0]
            np.testing.assert_allclose(scatter.x, shown[:, 0], rtol=1e-6)
            np.testing.assert_array_equal(scatter.color, labels)
        view.wait(60)


def test_bar_click_selects_the_layer_and_the_layer_selects_the_bar(data):
    model, images, labels = data
    with mv.LayerProbe(model, images, labels) as view:
        view.wait(60)
        bars = view.figures[0].marks[0]
        before = view.current["points"].copy()
        bars.selected = [2]  # what a click on the third bar sends
        assert view.layer == "classifier.2"
        assert not np.array_equal(view.current["points"], before)
        assert "classifier.2" in view.summary
        FrontEnd(view.core).set(layer="features.4")
        assert list(bars.selected) == [1]
        bars.selected = [0]  # index 0 is falsy: still a selection
        assert view.layer == "features.0"


def test_tsne_projection(data):
    model, images, labels = data
    with mv.LayerProbe(model, images, labels, layers=["classifier.2"]) as view:
        view.projection = "tsne"
        from sklearn.manifold import TSNE

        features = independent_features(model, images, ["classifier.2"])["classifier.2"]
        expected = TSNE(
            n_components=2, random_state=0, init="pca", learning_rate="auto",
            perplexity=min(30.0, (len(labels) - 1) / 3),
        ).fit_transform(features)  # fmt: skip
        np.testing.assert_allclose(view.current["points"], expected, rtol=1e-3, atol=1e-3)
        view.wait(60)


def test_model_untouched_and_hooks_removed(data):
    model, images, labels = data
    before = model_snapshot(model)
    for _ in range(3):
        with mv.LayerProbe(model, images, labels, layers="classifier.2") as view:
            view.wait(60)
    assert_unchanged(model, before)


def test_closed_widget_releases_the_model(data):
    _, images, labels = data
    model = SmallCNN(n_classes=3)
    view = mv.LayerProbe(model, images, labels, layers=["classifier.2"])
    view.wait(60)
    ref = weakref.ref(model)
    view.close()
    del model, view
    gc.collect()
    assert ref() is None


def test_bad_input_is_refused_clearly(data):
    model, images, labels = data
    with pytest.raises(ValueError, match="got 59 labels .* for 60 inputs"):
        mv.LayerProbe(model, images, labels[:59])
    with pytest.raises(
        ValueError, match=r"unknown layer 'features\.9'; valid layer names are: features"
    ):
        mv.LayerProbe(model, images, labels, layers=["features.9"])
    with pytest.raises(
        ValueError, match="unknown estimator 'forest'; valid estimators are: logistic, svm, tree"
    ):
        mv.LayerProbe(model, images, labels, estimator="forest")
    with pytest.raises(TypeError, match="scikit-learn classifier"):
        mv.LayerProbe(model, images, labels, estimator=object())
    with pytest.raises(ValueError, match="valid projections are: pca, tsne"):
        mv.LayerProbe(model, images, labels, projection="umap")
    with pytest.raises(ValueError, match="at least 2 samples of every label"):
        mv.LayerProbe(model, images, np.r_[labels[:-1], 7])
    with pytest.raises(TypeError, match="unexpected keyword"):
        mv.LayerProbe(model, images, labels, colour="red")
    with mv.LayerProbe(model, images, labels, layers="classifier.2") as view:
        view.wait(60)
        with pytest.raises(ValueError, match="valid estimators are: logistic, svm, tree"):
            view.estimator = "forest"
        with pytest.raises(ValueError, match="valid layer names are: classifier.2"):
            view.layer = "features.0"


def test_probe_function_without_a_widget(data):
    model, images, labels = data
    features = independent_features(model, images, LAYERS)
    progress = []
    scores = probe.probe(
        model, images, labels, estimator="tree", on_progress=lambda d, t: progress.append((d, t))
    )
    assert list(scores) == LAYERS
    assert progress == [(1, 3), (2, 3), (3, 3)]
    for layer in LAYERS:
        assert scores[layer].accuracy == reference_accuracy(
            features[layer], labels, DecisionTreeClassifier(random_state=0)
        )
        assert scores[layer].n_features == features[layer].shape[1]
