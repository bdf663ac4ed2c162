"""A model's structure as a tree of named modules, with what each module did in one forward.

Every ``named_modules(remove_duplicate=False)`` name is a node, so a module object registered under
two parents appears under each (and names the other in ``shared_with``). With inputs, one forward
in eval mode under ``torch.no_grad`` records every call of every module: the shape of its output,
its mean magnitude and how many values were not finite. The magnitudes are reduced on the model's
device as the forward goes and reach the host in one copy at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hooks import removing, visual_mode
from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model, first_tensor, layer_kind
from .training_bins import to_host


@dataclass(frozen=True)
class ModuleCall:
    """One call of a module in the recorded forward.

    Attributes
    ----------
    index
        The order of this call among all module calls of the forward, counted from 0 when the
        call starts (the root module's call is 0, a container's call comes before its children's).
    output_shape
        Shape of the output's first tensor, ``None`` when the output holds no tensor.
    magnitude
        Mean ``|x|`` over the finite values of that tensor; NaN when it has none.
    nonfinite
        How many of its values are NaN or infinite.
    """

    index: int
    output_shape: tuple[int, ...] | None
    magnitude: float
    nonfinite: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "magnitude": None if math.isnan(self.magnitude) else self.magnitude,
            "nonfinite": self.nonfinite,
        }


@dataclass(frozen=True)
class TreeNode:
    """One name in a model's module tree.

    Attributes
    ----------
    name
        The ``named_modules()`` name; ``""`` for the model itself.
    parent
        The parent's name; ``None`` for the root.
    depth
        0 for the root, 1 for its children, and so on.
    module_type
        The class name, e.g. ``"Conv2d"``.
    kind
        One of :data:`~.layers.KINDS` (``"container"`` for a module with children that is not a
        known layer kind itself).
    n_params
        Parameters of the module and its descendants, each parameter object counted once.
    own_params
        Parameters registered on the module itself.
    children
        Names of the direct children, in registration order.
    calls
        The module's calls in the recorded forward (empty without inputs, or when it did not
        run). A module object shared by several names lists the same calls under each.
    shared_with
        The other names of the same module object; empty for a module registered once.
    """

    name: str
    parent: str | None
    depth: int
    module_type: str
    kind: str
    n_params: int
    own_params: int
    children: tuple[str, ...]
    calls: tuple[ModuleCall, ...]
    shared_with: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe values: lists for tuples, ``None`` for NaN magnitudes."""
        return {
            "name": self.name,
            "parent": self.parent,
            "depth": self.depth,
            "module_type": self.module_type,
            "kind": self.kind,
            "n_params": self.n_params,
            "own_params": self.own_params,
            "children": list(self.children),
            "calls": [call.as_dict() for call in self.calls],
            "shared_with": list(self.shared_with),
        }


def model_tree(model: nn.Module, inputs: Any = None) -> list[TreeNode]:
    """The module tree of ``model``, root first, with each module's calls on ``inputs``.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was (modes, parameters, buffers, hooks).
    inputs
        Optional: a tensor, a tuple/list of positional arguments or a dict of keyword arguments,
        moved to the model's device, for one forward in eval mode without gradients. ``None``
        skips the forward and every node's ``calls`` is empty.

    Returns
    -------
    list of TreeNode
        In ``named_modules(remove_duplicate=False)`` order: the root (name ``""``) first.
    """
    return tree_and_output(model, inputs)[0]


def tree_and_output(model: nn.Module, inputs: Any = None) -> tuple[list[TreeNode], Any]:
    """:func:`model_tree` and the model's (detached) output from the same forward (``None``
    without inputs)."""
    check_model(model)
    entries = list(model.named_modules(remove_duplicate=False))
    calls, output = _record_calls(model, inputs) if inputs is not None else ({}, None)
    names_of: dict[int, list[str]] = {}
    for name, module in entries:
        names_of.setdefault(id(module), []).append(name)
    nodes = []
    for name, module in entries:
        prefix = f"{name}." if name else ""
        own = _unique_numel(p for p in module._parameters.values() if p is not None)
        nodes.append(
            TreeNode(
                name=name,
                parent=None if not name else name.rpartition(".")[0],
                depth=0 if not name else name.count(".") + 1,
                module_type=type(module).__name__,
                kind=layer_kind(module),
                n_params=_unique_numel(module.parameters()),
                own_params=own,
                children=tuple(
                    prefix + child for child, sub in module._modules.items() if sub is not None
                ),
                calls=tuple(calls.get(id(module), ())),
                shared_with=tuple(other for other in names_of[id(module)] if other != name),
            )
        )
    return nodes, output


def _unique_numel(parameters: Any) -> int:
    seen: dict[int, int] = {}
    for parameter in parameters:
        seen[id(parameter)] = parameter.numel()
    return sum(seen.values())


def _reduce(tensor: torch.Tensor) -> torch.Tensor:
    """``[sum of finite |x|, finite count, nonfinite count]`` of one output, on its device."""
    values = tensor.detach()
    if values.is_complex():
        values = values.abs()
    elif not values.is_floating_point():
        values = values.float()
    if values.device.type == "cpu":
        # One pass: the sum of |x| is finite exactly when every value is (the usual case).
        absolute = float(torch.linalg.vector_norm(values, ord=1))
        if math.isfinite(absolute):
            return torch.tensor([absolute, float(values.numel()), 0.0])
    finite = torch.isfinite(values)
    n_finite = finite.sum()
    total = values.abs().masked_fill_(~finite, 0).sum(dtype=torch.float32)
    return torch.stack([total, n_finite.to(torch.float32), (values.numel() - n_finite).float()])


def _record_calls(model: nn.Module, inputs: Any) -> tuple[dict[int, list[ModuleCall]], Any]:
    """One forward; every call of every module object, by ``id(module)``, in call order; and the
    model's output."""
    device = model_device(model)
    inputs = move_to_device(inputs, device)
    n_calls = 0
    started: dict[int, list[int]] = {}  # module id -> indices of its calls still running
    # (module id, call index, output shape, row in reductions or -1)
    finished: list[tuple[int, int, tuple[int, ...] | None, int]] = []
    reductions: list[torch.Tensor] = []

    def on_start(module: nn.Module, args: Any) -> None:
        nonlocal n_calls
        started.setdefault(id(module), []).append(n_calls)
        n_calls += 1

    def on_end(module: nn.Module, args: Any, output: Any) -> None:
        index = started[id(module)].pop()
        tensor = first_tensor(output)
        if tensor is None:
            finished.append((id(module), index, None, -1))
        else:
            finished.append((id(module), index, tuple(tensor.shape), len(reductions)))
            reductions.append(_reduce(tensor))

    with visual_mode(model):
        handles: list[torch.utils.hooks.RemovableHandle] = []
        with removing(handles), torch.no_grad():
            for module in model.modules():
                handles.append(module.register_forward_pre_hook(on_start))
                handles.append(module.register_forward_hook(on_end))
            try:
                output = call_model(model, inputs)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
    host = None
    if reductions:
        stacked = torch.stack([reduction.to(device) for reduction in reductions])
        host = to_host([stacked], device)[0]
    calls: dict[int, list[ModuleCall]] = {}
    for module_id, index, shape, row in sorted(finished, key=lambda item: item[1]):
        magnitude, nonfinite = math.nan, 0
        if row >= 0:
            assert host is not None
            total, n_finite, n_bad = host[row]
            magnitude = float(total / n_finite) if n_finite else math.nan
            nonfinite = int(n_bad)
        calls.setdefault(module_id, []).append(ModuleCall(index, shape, magnitude, nonfinite))
    return calls, output
