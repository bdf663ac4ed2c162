"""2-D projections of row vectors (flattened filters, flattened activations) with scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

METHODS: tuple[str, ...] = ("pca", "tsne")
"""Projection methods that :func:`project` knows."""

DEFAULT_PERPLEXITY = 30.0


def tsne_perplexity(n_rows: int, requested: float = DEFAULT_PERPLEXITY) -> float:
    """The t-SNE perplexity used for ``n_rows`` points.

    scikit-learn needs a perplexity below the number of points, and a perplexity near it gives every
    point the same neighbours; it is clamped to ``max(1, (n_rows - 1) / 3)`` (a third of the other
    points as effective neighbours), and left as requested when that is smaller.
    """
    return float(min(requested, max(1.0, (n_rows - 1) / 3.0)))


def as_matrix(matrix: Any) -> np.ndarray:
    """A float64 ``[n, d]`` array from a numpy array or tensor (rows beyond 2-D are flattened)."""
    if isinstance(matrix, torch.Tensor):
        array = matrix.detach().to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(matrix, dtype=np.float64)
    if array.ndim == 1:
        raise ValueError(
            f"project() takes a matrix [n, d] of n row vectors, got a 1-D array of shape "
            f"{list(array.shape)}; use matrix.reshape(-1, 1) for n scalars"
        )
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    return array


def project(
    matrix: np.ndarray | torch.Tensor, method: str = "pca", seed: int = 0, **options: Any
) -> np.ndarray:
    """Project ``n`` row vectors to 2-D points.

    Parameters
    ----------
    matrix
        ``[n, d]`` numpy array or tensor: one row per item (a flattened filter, a flattened
        activation). Arrays with more dimensions are flattened from the second on.
    method
        ``"pca"`` (scikit-learn ``PCA``, 2 components) or ``"tsne"`` (scikit-learn ``TSNE``,
        ``init="pca"``, ``learning_rate="auto"``).
    seed
        ``random_state`` of the estimator, so the same call gives the same points.
    **options
        Passed to the estimator (e.g. ``perplexity``, ``max_iter``, ``svd_solver``). For t-SNE the
        perplexity (30 by default) is clamped with :func:`tsne_perplexity` so small ``n`` works.

    Returns
    -------
    numpy.ndarray
        ``[n, 2]`` float32 coordinates, row ``i`` for row ``i`` of ``matrix``.

    Raises
    ------
    ValueError
        For an unknown method, fewer than 2 rows, or non-finite values.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; valid methods are {list(METHODS)}")
    array = as_matrix(matrix)
    n_rows = array.shape[0]
    if n_rows < 2:
        raise ValueError(f"a 2-D projection needs at least 2 rows (items), got {n_rows}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(f"cannot project rows with NaN or Inf values ({bad} of {n_rows} rows)")
    if array.shape[1] < 2:
        # Both estimators need at least as many features as components; a zero column adds none.
        array = np.hstack([array, np.zeros((n_rows, 2 - array.shape[1]))])
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=seed, **options).fit_transform(array)
    else:
        from sklearn.manifold import TSNE

        settings: dict[str, Any] = {"init": "pca", "learning_rate": "auto", **options}
        settings["perplexity"] = tsne_perplexity(
            n_rows, float(settings.get("perplexity", DEFAULT_PERPLEXITY))
        )
        points = TSNE(n_components=2, random_state=seed, **settings).fit_transform(array)
    return np.ascontiguousarray(points, dtype=np.float32)
