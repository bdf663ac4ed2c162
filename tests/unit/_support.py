"""Tiny models, a record of every module's hooks and state, and a fake front end."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv, BatchNorm, in-place ReLU, pooling, dropout and a classifier: the usual hazards."""

    def __init__(self, in_channels: int = 1, n_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 4 * 4, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def model_snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything a visualization must leave as it was, copied."""
    return {
        "hooks": {
            name: {attr: dict(getattr(module, attr, {})) for attr in HOOK_DICTS}
            for name, module in model.named_modules()
        },
        "global_hooks": (
            dict(nn.modules.module._global_forward_hooks),
            dict(nn.modules.module._global_forward_pre_hooks),
            dict(nn.modules.module._global_backward_hooks),
        ),
        "training": {name: module.training for name, module in model.named_modules()},
        "state": {key: value.clone() for key, value in model.state_dict(keep_vars=False).items()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "grads": {
            name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()
        },
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = model_snapshot(model)
    assert after["hooks"] == before["hooks"]
    assert after["global_hooks"] == before["global_hooks"]
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        # Bit-identical, NaN-safe: compare the raw bytes.
        assert torch.equal(
            after["state"][key].view(-1).view(torch.uint8), value.view(-1).view(torch.uint8)
        ), key
    for name, grad in before["grads"].items():
        if grad is None:
            assert after["grads"][name] is None, name
        else:
            assert torch.equal(after["grads"][name], grad), name


def forward_with(model: nn.Module, inputs: torch.Tensor, handles: list[Any]) -> None:
    """One forward in eval mode without autograd, for hooks written in a test; then the hooks
    are removed and the model's mode restored, whatever happened."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def hooked_output(model: nn.Module, inputs: torch.Tensor, layer: str) -> torch.Tensor:
    """A layer's output from a forward hook written here, in eval mode without autograd, the
    model's mode restored: the independent reference the widgets' pictures are checked against."""
    store: dict[str, torch.Tensor] = {}
    module = dict(model.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, a, out: store.setdefault("out", out.clone()))
    forward_with(model, inputs, [handle])
    return store["out"]


class FrontEnd:
    """Stands in for the browser: records what the widget sends and sends trait changes to it."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.messages: list[tuple[dict[str, Any], list[Any]]] = []
        original = widget._send

        def record(msg: dict[str, Any], buffers: list[Any] | None = None) -> None:
            self.messages.append((msg, list(buffers or [])))
            original(msg, buffers)

        widget._send = record

    def set(self, **state: Any) -> None:
        """What the browser sends when the user moves a control."""
        self.widget._handle_msg(
            {
                "content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                "buffers": [],
            }
        )

    def updates(self) -> list[dict[str, Any]]:
        """The state of each update message, binary buffers put back in their places."""
        updates = []
        for msg, buffers in self.messages:
            if msg.get("method") != "update":
                continue
            state = dict(msg["state"])
            for path, buffer in zip(msg.get("buffer_paths", []), buffers, strict=True):
                state[path[0]] = buffer  # our payloads sit at the top level of the state
            updates.append(state)
        return updates
