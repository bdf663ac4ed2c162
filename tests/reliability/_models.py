"""Small models with the usual hazards, a fault to inject, and every public entry point as a
*subject*: one way to build it on a small model and drive it as a user would.

The suite's cases run over :data:`SUBJECTS` (each case picks the subjects it applies to), so a
new widget or function only needs one entry here to be checked by every case.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ipywidgets.widgets import widget as ipywidget
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture.attribution import METHODS
from modelviz_widgets.capture.tokens import TOKEN_METHODS
from tests.unit._support import HOOK_DICTS, assert_unchanged, model_snapshot

__all__ = [
    "HOOK_DICTS",
    "SUBJECTS",
    "WIDGETS",
    "AttentionNet",
    "Boom",
    "RecordingDropout",
    "ReliableCNN",
    "Subject",
    "Tagger",
    "Tripwire",
    "assert_unchanged",
    "finish",
    "hook_count",
    "model_snapshot",
    "registry_size",
]


class Boom(Exception):
    """What the tripwire raises: not a RuntimeError, so no wrapper can mistake it for an input
    error and every ``except`` on the way must let it through."""


class Tripwire(nn.Module):
    """Identity, until ``armed``: then its forward raises :class:`Boom` in the middle of the
    model's forward, after the hooks on the layers before it have fired."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.armed:
            raise Boom("tripwire: the forward failed half way")
        return x


class RecordingDropout(nn.Dropout):
    """Dropout with p=0.9 that records, on each call, whether it ran in training mode (that is,
    whether it dropped units)."""

    def __init__(self, p: float = 0.9) -> None:
        super().__init__(p)
        self.calls: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(self.training)
        return super().forward(x)


class ReliableCNN(nn.Module):
    """Conv, BatchNorm, in-place ReLU, a tripwire, pooling, a recording dropout and a classifier;
    the first conv's bias is frozen (``requires_grad=False``)."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
            Tripwire(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), RecordingDropout(0.9), nn.Linear(8 * 4 * 4, n_classes)
        )
        self.features[0].bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Tagger(nn.Module):
    """Embedding -> tripwire -> LSTM -> recording dropout -> one tag per token ``[B, T, tags]``;
    the head's bias is frozen."""

    def __init__(self, vocabulary: int = 12, width: int = 6, n_tags: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.trip = Tripwire()
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.drop = RecordingDropout(0.9)
        self.head = nn.Linear(width, n_tags)
        self.head.bias.requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.trip(self.embed(tokens)))
        return self.head(self.drop(states))


class AttentionNet(nn.Module):
    """Linear -> tripwire -> ``nn.MultiheadAttention`` (dropout 0.5 inside) -> recording dropout
    -> classifier on the mean over positions; the head's bias is frozen."""

    def __init__(self, width: int = 8, n_classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(width, width)
        self.trip = Tripwire()
        self.attn = nn.MultiheadAttention(width, 2, dropout=0.5, batch_first=True)
        self.drop = RecordingDropout(0.9)
        self.head = nn.Linear(width, n_classes)
        self.head.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trip(self.embed(x))
        mixed, _ = self.attn(x, x, x)
        return self.head(self.drop(mixed.mean(dim=1)))


def _settle(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Real BatchNorm statistics and existing ``.grad`` values: one train-mode forward and
    backward, then every recorded dropout call forgotten."""
    model.train()
    model(inputs).sum().backward()
    for module in model.modules():
        if isinstance(module, RecordingDropout):
            module.calls.clear()
    return model


def cnn() -> ReliableCNN:
    torch.manual_seed(0)
    return _settle(ReliableCNN(), torch.randn(16, 1, 8, 8))


def images(n: int = 6) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 1, 8, 8)


def labels(n: int = 6) -> np.ndarray:
    return np.arange(n) % 3


def tagger() -> Tagger:
    torch.manual_seed(0)
    return _settle(Tagger(), torch.randint(0, 12, (4, 5)))


def tokens() -> torch.Tensor:
    torch.manual_seed(2)
    return torch.randint(0, 12, (3, 5))


def attention_net() -> AttentionNet:
    torch.manual_seed(0)
    return _settle(AttentionNet(), torch.randn(4, 5, 8))


def sequences() -> torch.Tensor:
    torch.manual_seed(3)
    return torch.randn(2, 5, 8)


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], Any]]] = {
    "cnn": (cnn, images),
    "tagger": (tagger, tokens),
    "attention": (attention_net, sequences),
}
"""Model kind -> (a fresh model, its inputs)."""


def name(model: nn.Module, layer: str) -> str:
    """A layer's name in ``model``, looking through a ``torch.compile`` wrapper."""
    return f"_orig_mod.{layer}" if hasattr(model, "_orig_mod") else layer


def finish(made: Any) -> Any:
    """Wait for a widget's background work (Saliency, LayerProbe, TrainingMonitor)."""
    wait = getattr(made, "wait", None)
    if callable(wait) and isinstance(made, (mv.Saliency, mv.LayerProbe)):
        wait(60)
    return made


def close(made: Any) -> None:
    if hasattr(made, "close") and hasattr(made, "comm"):
        made.close()


@dataclass(frozen=True)
class Subject:
    """One public widget or function, built on one kind of small model.

    ``build(model, inputs)`` returns the widget (or the function's result); ``drive(widget)``
    makes the selection changes a user makes, each re-running the model where the widget does.
    """

    id: str
    model: str
    build: Callable[[nn.Module, Any], Any]
    drive: Callable[[Any], None] | None = None
    widget: bool = False
    forward: bool = True
    """Whether building it runs the model (Filters and TrainingMonitor do not)."""
    holds_hooks: bool = False
    """Whether it keeps hooks on the model while open, by design (TrainingMonitor's, armed for
    the next sampled step); they go on close()."""

    def __str__(self) -> str:
        return self.id


def _drive_feature_maps(w: Any) -> None:
    w.layer = w.layer_options[-1]["name"]
    w.layer = w.layer_options[0]["name"]
    w.sample, w.channel = 1, 2


def _drive_saliency(w: Any) -> None:
    w.target = 2
    w.sample = 1
    finish(w)


def _drive_activation_functions(w: Any) -> None:
    w.layer = w.layer_options[-1]["name"]


def _drive_hidden_states(w: Any) -> None:
    w.sample = 1
    w.quantity = "gradient"


def _drive_attention(w: Any) -> None:
    w.sample = 1
    w.head = 1
    w.inputs = w.inputs * 2  # new inputs: the model runs again


def _drive_explorer(w: Any) -> None:
    for layer in ("features.0", "features.5", "classifier.2"):
        w.layer = name(w._model, layer)
    w.target = 2
    w.tab = "saliency"
    for view in w.views.values():
        finish(view)


def _drive_training_monitor(w: Any) -> None:
    w.step(1.0, accuracy=0.5)


def _attribute(method: str) -> Callable[[nn.Module, Any], Any]:
    options: dict[str, Any] = {
        "smoothgrad": {"n_samples": 3, "seed": 0},
        "integrated_gradients": {"steps": 4},
        "occlusion": {"window": (1, 4, 4), "stride": 4},
    }.get(method, {})

    def run(model: nn.Module, inputs: Any) -> Any:
        layer = name(model, "features.5") if method == "grad_cam" else None
        return mv.attribute(
            model, inputs, target=1, method=method, layer=layer, progress=False, **options
        )

    return run


def _subjects() -> list[Subject]:
    subjects = [
        Subject(
            "capture",
            "cnn",
            lambda m, x: mv.capture(
                m, x, [name(m, "features.0"), name(m, "features.2")], grads=True
            ),
        ),
        *(Subject(f"attribute[{method}]", "cnn", _attribute(method)) for method in METHODS),
        Subject("recurrent_states", "tagger", lambda m, x: mv.recurrent_states(m, x, grads=True)),
        *(
            Subject(
                f"token_attribution[{method}]",
                "tagger",
                lambda m, x, method=method: mv.token_attribution(m, x, method=method, steps=4),
            )
            for method in TOKEN_METHODS
        ),
        Subject("attention_maps", "attention", lambda m, x: mv.attention_maps(m, x)),
        Subject("model_tree", "cnn", lambda m, x: mv.model_tree(m, x)),
        Subject("layer_health", "cnn", lambda m, x: mv.layer_health(m, x)),
        Subject("layers", "cnn", lambda m, x: mv.layers(m, x)),
        Subject("FeatureMaps", "cnn", lambda m, x: mv.FeatureMaps(m, x), _drive_feature_maps, True),
        Subject(
            "Filters",
            "cnn",
            lambda m, x: mv.Filters(m),
            lambda w: setattr(w, "layer", w.core.layer_options[-1]["name"]),
            True,
            forward=False,
        ),
        Subject(
            "Saliency[sync]",
            "cnn",
            lambda m, x: mv.Saliency(m, x, method="saliency", asynchronous=False),
            _drive_saliency,
            True,
        ),
        Subject(
            "Saliency[async]",
            "cnn",
            lambda m, x: finish(mv.Saliency(m, x, method="integrated_gradients", steps=4)),
            _drive_saliency,
            True,
        ),
        Subject(
            "ActivationFunctions",
            "cnn",
            lambda m, x: mv.ActivationFunctions(m, x),
            _drive_activation_functions,
            True,
        ),
        Subject(
            "LayerProbe",
            "cnn",
            lambda m, x: finish(
                mv.LayerProbe(m, x, labels(len(x)), layers=[name(m, "classifier.2")], test_size=0.5)
            ),
            None,
            True,
        ),
        Subject(
            "HiddenStates",
            "tagger",
            lambda m, x: mv.HiddenStates(m, x, attribution_method="gradient"),
            _drive_hidden_states,
            True,
        ),
        Subject("Attention", "attention", lambda m, x: mv.Attention(m, x), _drive_attention, True),
        Subject(
            "TrainingMonitor",
            "cnn",
            lambda m, x: mv.TrainingMonitor(m, every=1),
            _drive_training_monitor,
            True,
            forward=False,
            holds_hooks=True,
        ),
        Subject("Explorer", "cnn", lambda m, x: mv.Explorer(m, x), _drive_explorer, True),
    ]
    return subjects


SUBJECTS: list[Subject] = _subjects()
WIDGETS: list[Subject] = [s for s in SUBJECTS if s.widget]


def make(subject: Subject) -> tuple[nn.Module, Any]:
    model_factory, input_factory = MODELS[subject.model]
    return model_factory(), input_factory()


def hook_count(model: nn.Module) -> int:
    """Every hook on every module of ``model``, plus the global module hooks."""
    own = sum(len(getattr(m, attr, {})) for m in model.modules() for attr in HOOK_DICTS)
    module = nn.modules.module
    return (
        own
        + len(module._global_forward_hooks)
        + len(module._global_forward_pre_hooks)
        + len(module._global_backward_hooks)
    )


def registry_size() -> int:
    """How many widgets ipywidgets' registry holds (``Widget.widgets``; a widget stays in it, and
    stays alive, until it is closed: jupyter-widgets/ipywidgets#1345)."""
    return len(ipywidget._instances)


@contextmanager
def armed(model: nn.Module) -> Iterator[None]:
    """Arm every tripwire of ``model`` for the duration."""
    wires = [m for m in model.modules() if isinstance(m, Tripwire)]
    for wire in wires:
        wire.armed = True
    try:
        yield
    finally:
        for wire in wires:
            wire.armed = False


def dropout_calls(model: nn.Module) -> list[bool]:
    return [flag for m in model.modules() if isinstance(m, RecordingDropout) for flag in m.calls]


def collect() -> None:
    gc.collect()
    gc.collect()
