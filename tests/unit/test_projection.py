"""project(): PCA and t-SNE of row vectors, checked against scikit-learn run here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from modelviz_widgets.capture.projection import project


@pytest.fixture
def matrix() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(20, 9))


def test_pca_equals_sklearn_up_to_the_sign_of_each_component(matrix):
    points = project(matrix, "pca", seed=0)
    expected = PCA(n_components=2, random_state=0).fit_transform(matrix)
    assert points.shape == (20, 2) and points.dtype == np.float32
    for component in range(2):
        sign = np.sign(points[:, component] @ expected[:, component])
        np.testing.assert_allclose(sign * points[:, component], expected[:, component], atol=1e-5)


def test_a_tensor_and_an_array_give_the_same_points(matrix):
    np.testing.assert_array_equal(
        project(torch.tensor(matrix, dtype=torch.float64), "pca"), project(matrix, "pca")
    )


def test_tsne_equals_sklearn_with_the_same_seed(matrix):
    points = project(matrix, "tsne", seed=4, max_iter=300)
    # 20 points: the default perplexity 30 is clamped to (20 - 1) / 3.
    expected = TSNE(
        n_components=2,
        perplexity=19 / 3,
        init="pca",
        learning_rate="auto",
        random_state=4,
        max_iter=300,
    ).fit_transform(matrix)
    np.testing.assert_allclose(points, expected, rtol=1e-4, atol=1e-4)


def test_tsne_keeps_a_perplexity_smaller_than_the_clamp():
    matrix = np.random.default_rng(0).normal(size=(40, 5))
    points = project(matrix, "tsne", seed=1, perplexity=5.0, max_iter=250)
    expected = TSNE(
        n_components=2,
        perplexity=5.0,
        init="pca",
        learning_rate="auto",
        random_state=1,
        max_iter=250,
    ).fit_transform(matrix)
    np.testing.assert_allclose(points, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_rows", [2, 3, 5])
def test_tsne_works_for_a_handful_of_points(n_rows):
    matrix = np.random.default_rng(n_rows).normal(size=(n_rows, 4))
    points = project(matrix, "tsne", max_iter=250)
    assert points.shape == (n_rows, 2) and np.isfinite(points).all()


def test_a_single_feature_is_padded_not_refused():
    column = np.arange(6.0).reshape(6, 1)
    points = project(column, "pca")
    # One direction of variance: the first component is the centred column (up to sign).
    np.testing.assert_allclose(np.abs(points[:, 0]), np.abs(column[:, 0] - 2.5), atol=1e-5)
    np.testing.assert_allclose(points[:, 1], 0, atol=1e-5)


def test_rows_beyond_two_dimensions_are_flattened():
    stack = np.random.default_rng(1).normal(size=(7, 2, 3, 3))
    np.testing.assert_allclose(project(stack), project(stack.reshape(7, -1)), atol=1e-6)


def test_bad_input_is_refused_with_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown projection method 'umap'.*'pca', 'tsne'"):
        project(np.zeros((4, 3)), "umap")
    with pytest.raises(ValueError, match="at least 2 rows.*got 1"):
        project(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2 rows.*got 0"):
        project(np.zeros((0, 3)), "tsne")
    with pytest.raises(ValueError, match="1-D"):
        project(np.zeros(5))
    bad = np.zeros((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf.*1 of 4"):
        project(bad)
