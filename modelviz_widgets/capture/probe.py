"""Layer probes: how well a simple classifier reads the labels off each layer's activations.

Each layer's output is flattened to one row per sample and a scikit-learn classifier is fitted on
a stratified split with a fixed seed; its accuracy on the held-out part is the layer's probe score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .hooks import capture, dry_run
from .layers import check_model, layer_kind, named_layers, unknown_layer_message

ESTIMATORS: tuple[str, ...] = ("logistic", "svm", "tree")
"""Estimator names: logistic regression (default), linear SVM, decision tree."""

PROBE_KINDS = ("conv", "linear")
"""Layer kinds probed by default (those with a tensor output)."""

DEFAULT_TEST_SIZE = 0.25
"""Share of the samples held out to score each probe."""


def make_estimator(estimator: Any = None, seed: int = 0) -> Any:
    """A fresh, unfitted scikit-learn classifier.

    Parameters
    ----------
    estimator
        ``None`` or ``"logistic"``: ``StandardScaler`` then ``LogisticRegression(max_iter=1000)``
        in a ``Pipeline``; ``"svm"``: ``StandardScaler`` then ``LinearSVC``; ``"tree"``:
        ``DecisionTreeClassifier``; or any scikit-learn classifier object, which is cloned.
    seed
        ``random_state`` of the estimators that draw random numbers.
    """
    from sklearn.base import clone, is_classifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    if estimator is None or estimator == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if estimator == "svm":
        return make_pipeline(StandardScaler(), LinearSVC(random_state=seed))
    if estimator == "tree":
        return DecisionTreeClassifier(random_state=seed)
    if isinstance(estimator, str):
        raise ValueError(
            f"unknown estimator {estimator!r}; valid estimators are: {', '.join(ESTIMATORS)}, "
            "or a scikit-learn classifier object"
        )
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(
            f"estimator must be one of {', '.join(ESTIMATORS)} or a scikit-learn classifier "
            f"(with fit and predict), got {type(estimator).__name__}"
        )
    if not is_classifier(estimator):
        raise TypeError(f"estimator {type(estimator).__name__} is not a scikit-learn classifier")
    return clone(estimator)


def as_labels(labels: Any, n_samples: int) -> np.ndarray:
    """Labels as a 1-D numpy array, checked to be one per sample."""
    if isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    else:
        array = np.asarray(labels)
    array = array.reshape(-1) if array.ndim > 1 and array.size == n_samples else array
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise ValueError(
            f"got {array.shape[0] if array.ndim else 0} labels (shape {list(array.shape)}) for "
            f"{n_samples} inputs; pass one label per input sample"
        )
    return array


def split(
    labels: np.ndarray, test_size: float = DEFAULT_TEST_SIZE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / held-out sample indices (sklearn ``train_test_split``, fixed seed)."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise ValueError("a probe needs at least 2 distinct labels")
    if counts.min() < 2:
        raise ValueError(
            "a stratified split needs at least 2 samples of every label; "
            f"the rarest label has {counts.min()}"
        )
    indices = np.arange(len(labels))
    train, test = train_test_split(indices, test_size=test_size, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def flatten(activation: torch.Tensor) -> np.ndarray:
    """``[N, ...]`` activations as float64 ``[N, features]``."""
    return activation.detach().to("cpu", torch.float64).reshape(activation.shape[0], -1).numpy()


def probe_layers(model: nn.Module, inputs: Any) -> list[str]:
    """Names of the conv-like and linear layers whose output is a tensor, in model order."""
    outputs = dry_run(
        check_model(model), inputs[:1] if isinstance(inputs, torch.Tensor) else inputs
    )
    return [
        name
        for name, module in named_layers(model).items()
        if layer_kind(module) in PROBE_KINDS and name in outputs and outputs[name][1]
    ]


def check_layers(model: nn.Module, inputs: Any, layers: Sequence[str] | str | None) -> list[str]:
    """The layers to probe: the given ones (checked) or :func:`probe_layers`."""
    available = named_layers(check_model(model))
    if layers is None:
        chosen = probe_layers(model, inputs)
        if not chosen:
            raise ValueError(
                "the model has no conv or linear layer with a tensor output to probe; pass layers= "
                f"from: {', '.join(available)}"
            )
        return chosen
    chosen = [layers] if isinstance(layers, str) else list(layers)
    if not chosen:
        raise ValueError(f"no layers given; valid layer names are: {', '.join(available)}")
    for name in chosen:
        if name not in available:
            raise ValueError(unknown_layer_message(name, available))
    return chosen


@dataclass(frozen=True)
class ProbeScore:
    """One fitted probe: accuracy on the held-out and on the training samples, and whether the
    estimator's solver reported convergence."""

    layer: str
    accuracy: float
    train_accuracy: float
    n_features: int
    converged: bool = True


def fit_probe(
    features: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    estimator: Any = None,
    seed: int = 0,
    layer: str = "",
) -> ProbeScore:
    """Fit a fresh estimator on ``features[train]`` and score it on ``features[test]``."""
    from sklearn.exceptions import ConvergenceWarning

    model = make_estimator(estimator, seed)
    # A probe that did not quite converge still scores; it is reported, not printed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features[train], labels[train])
    return ProbeScore(
        layer=layer,
        accuracy=float(model.score(features[test], labels[test])),
        train_accuracy=float(model.score(features[train], labels[train])),
        n_features=int(features.shape[1]),
        converged=not any(issubclass(w.category, ConvergenceWarning) for w in caught),
    )


def layer_features(model: nn.Module, inputs: Any, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Every layer's flattened activations for ``inputs``, from one captured forward."""
    activations = capture(model, inputs, list(layers)).activations
    return {name: flatten(activations[name]) for name in layers}


def probe(
    model: nn.Module,
    inputs: Any,
    labels: Any,
    layers: Sequence[str] | str | None = None,
    estimator: Any = None,
    seed: int = 0,
    test_size: float = DEFAULT_TEST_SIZE,
    on_progress: Callable[[int, int], object] | None = None,
) -> dict[str, ProbeScore]:
    """Fit a probe on each layer's activations and score it on a held-out split.

    Parameters
    ----------
    model, inputs
        The model and a batch of inputs (``[N, ...]``); the model is left as it was.
    labels
        One class label per input sample.
    layers
        Layer names; by default every conv-like and linear layer with a tensor output.
    estimator
        See :func:`make_estimator`.
    seed, test_size
        The stratified split's seed and held-out share (the same split for every layer).
    on_progress
        Called with ``(layers done, layers in all)`` after each fit.

    Returns
    -------
    dict
        Layer name -> :class:`ProbeScore`, in the order of ``layers``.
    """
    make_estimator(estimator, seed)  # a bad estimator fails before any forward
    chosen = check_layers(model, inputs, layers)
    n_samples = int(inputs.shape[0]) if isinstance(inputs, torch.Tensor) else len(inputs)
    label_array = as_labels(labels, n_samples)
    train, test = split(label_array, test_size, seed)
    features = layer_features(model, inputs, chosen)
    scores: dict[str, ProbeScore] = {}
    for done, name in enumerate(chosen, start=1):
        scores[name] = fit_probe(features[name], label_array, train, test, estimator, seed, name)
        if on_progress is not None:
            on_progress(done, len(chosen))
    return scores
