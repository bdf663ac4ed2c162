"""The capture engine: run a model once with hooks on chosen layers, then leave no trace.

Model hygiene (DESIGN.md): hooks are removed on success and on exception; the forward runs in eval
mode unless asked otherwise and every module's previous ``training`` flag is restored; parameters,
buffers and ``requires_grad`` are never written; gradients come from tensor hooks registered inside
forward hooks and are taken with ``torch.autograd.grad``, so no parameter's ``.grad`` is touched.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model, first_tensor, named_layers, unknown_layer_message
from .locking import ModelLock

Target = int | Iterable[int] | torch.Tensor | Callable[[Any], torch.Tensor] | None


@dataclass
class Capture:
    """What one captured run saw.

    Attributes
    ----------
    activations
        Layer name -> detached output tensor (the last call when a module runs more than once;
        ``"name#k"`` holds call ``k``, counted from 0).
    gradients
        Layer name -> gradient of the target score with respect to that output (``grads=True``).
    output
        The model's own output, detached.
    calls
        Layer name -> how many times the module ran in the forward pass (for ``"name#k"``: how
        many times ``name`` ran).
    """

    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor] = field(default_factory=dict)
    output: Any = None
    calls: dict[str, int] = field(default_factory=dict)


_model_locks: weakref.WeakKeyDictionary[nn.Module, ModelLock] = weakref.WeakKeyDictionary()
_model_locks_guard = threading.Lock()


def model_lock(model: nn.Module) -> ModelLock:
    """The lock that serializes everything that hooks or mode-switches ``model``.

    Widgets may compute in background threads (and a training loop may step the model): two
    visual forwards on one model at once would see each other's hooks and flip each other's
    training flags. Hold it from registering hooks until they are removed; it is re-entrant and
    granted first come first served (a training loop hands it on at each step boundary).
    """
    with _model_locks_guard:
        lock = _model_locks.get(model)
        if lock is None:
            lock = _model_locks[model] = ModelLock()
        return lock


@contextlib.contextmanager
def visual_mode(model: nn.Module, train: bool = False) -> Iterator[None]:
    """Put every module in eval (or train) mode for a visual forward, restoring each flag after.

    Holds :func:`model_lock` throughout."""
    with model_lock(model):
        flags = [(module, module.training) for module in model.modules()]
        changed = any(training != train for _, training in flags)
        try:
            if changed:
                model.train(train)  # through train(), so a model's own override is honoured
            yield
        finally:
            if changed:
                for module, training in flags:
                    if module.training != training:
                        # Straight into the instance dict: Module.__setattr__ is slow and a plain
                        # flag needs none of its bookkeeping.
                        module.__dict__["training"] = training


@contextlib.contextmanager
def removing(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    """Remove every handle in ``handles`` on the way out, whatever happened inside."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_detach(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(item) for item in value)
    if isinstance(value, dict):
        return type(value)((key, _detach(item)) for key, item in value.items())
    return value


def output_logits(output: Any) -> torch.Tensor:
    """The score tensor of a model output: the tensor itself, ``.logits``, or the first tensor."""
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    tensor = first_tensor(output)
    if tensor is None:
        raise TypeError(
            f"the model returned {type(output).__name__}, which holds no tensor to take a target "
            "score from; pass target as a callable that maps the output to a scalar tensor"
        )
    return tensor


def target_score(output: Any, target: Target) -> torch.Tensor:
    """Reduce a model output to the scalar whose gradient is taken.

    ``target`` is a class index, one index per sample, a callable on the output returning a scalar
    (or one score per sample, summed), or ``None`` for each sample's predicted class. Per-sample
    scores are summed: in eval mode samples are independent, so each sample's gradient is its own.
    """
    if callable(target) and not isinstance(target, torch.Tensor):
        score = target(output)
        if not isinstance(score, torch.Tensor):
            raise TypeError(f"the target callable must return a tensor, got {type(score).__name__}")
        return score.sum() if score.dim() else score
    logits = output_logits(output)
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)
    scores = logits.reshape(logits.shape[0], -1)
    n_classes = scores.shape[1]
    if target is None:
        index = scores.argmax(dim=1)
    else:
        index = torch.as_tensor(target, device=scores.device)
        if index.is_floating_point() or index.is_complex():
            raise TypeError(f"a target index must be an integer, got {target!r}")
        index = index.reshape(-1).long()
        if index.numel() == 1:
            index = index.expand(scores.shape[0])
        if index.numel() != scores.shape[0]:
            raise ValueError(
                f"got {index.numel()} target indices for a batch of {scores.shape[0]} samples; "
                "pass one index, or one per sample"
            )
        bad = (index < 0) | (index >= n_classes)
        if bool(bad.any()):
            raise ValueError(
                f"target index {int(index[bad][0])} is out of range: the output has {n_classes} "
                f"classes, so valid targets are 0..{n_classes - 1}"
            )
    return scores.gather(1, index[:, None]).sum()


def _grad_leaves(inputs: Any) -> tuple[Any, list[torch.Tensor]]:
    """Copies of the floating-point input tensors that require grad, so the backward walk reaches
    the input and fires every tensor hook on the way, without touching the caller's tensors."""
    leaves: list[torch.Tensor] = []

    def convert(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            leaf = value.detach().requires_grad_(True)
            leaves.append(leaf)
            return leaf
        if isinstance(value, (tuple, list)):
            return type(value)(convert(item) for item in value)
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        return value

    return convert(inputs), leaves


def split_call(name: str) -> tuple[str, int | None]:
    """``"block#1"`` -> ``("block", 1)``; a plain name -> ``(name, None)``."""
    base, mark, index = name.rpartition("#")
    if mark and base and index.isdigit():
        return base, int(index)
    return name, None


def resolve_calls(
    model: nn.Module, layers: str | Iterable[str]
) -> tuple[dict[str, nn.Module], dict[str, int | None]]:
    """:func:`~.layers.resolve_layers` that also accepts ``"name#k"``: call ``k`` of ``name``.

    Returns the modules by requested name, and for each requested name the chosen call (``None``:
    the last). A name that is itself a module's name is taken as it is, so a ``ModuleDict`` key
    holding a ``#`` still resolves."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("no layers given; pass a layer name or a list of them")
    # Every name model_tree() shows, a shared module's second name included.
    available = {name: m for name, m in model.named_modules(remove_duplicate=False) if name}
    calls: dict[str, int | None] = {}
    modules: dict[str, nn.Module] = {}
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"layer names are strings, got {type(name).__name__}: {name!r}")
        base, call = (name, None) if name in available else split_call(name)
        if base not in available:
            raise ValueError(unknown_layer_message(base, named_layers(model)))
        calls[name] = call
        modules[name] = available[base]
    return modules, calls


class _Recorder:
    """Forward hooks that keep each chosen layer's output and, with grads, its gradient.

    ``selected`` maps a name to the one call (0-based) to keep; by default the last is kept."""

    def __init__(
        self,
        modules: dict[str, nn.Module],
        grads: bool,
        clone: set[str],
        selected: dict[str, int | None] | None = None,
    ) -> None:
        self.grads = grads
        self.clone = clone
        self.selected = {name: (selected or {}).get(name) for name in modules}
        self.modules = modules
        self.outputs: dict[str, torch.Tensor] = {}
        self.versions: dict[str, int] = {}
        self.gradients: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = dict.fromkeys(modules, 0)
        self.bad_outputs: dict[str, str] = {}
        self.handles = [
            module.register_forward_hook(self._hook_for(name)) for name, module in modules.items()
        ]

    def _hook_for(self, name: str) -> Callable[..., None]:
        selected = self.selected[name]

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.calls[name] += 1
            call = self.calls[name]
            if selected is not None and call != selected + 1:
                return
            if not isinstance(output, torch.Tensor):
                self.bad_outputs[name] = type(output).__name__
                return
            kept = output.detach()
            self.outputs[name] = kept.clone() if name in self.clone else kept
            self.versions[name] = output._version
            if self.grads and output.requires_grad:

                def keep_gradient(gradient: torch.Tensor) -> None:
                    # Only the call whose output is kept (the last, or the chosen one) reports
                    # its gradient.
                    if selected is not None or call == self.calls[name]:
                        self.gradients[name] = gradient.detach()

                output.register_hook(keep_gradient)

        return hook

    def modified_in_place(self) -> set[str]:
        """Layers whose kept output a later in-place op (``ReLU(inplace=True)``) overwrote."""
        return {
            name
            for name, tensor in self.outputs.items()
            if name not in self.clone and tensor._version != self.versions[name]
        }


def _run(
    model: nn.Module,
    inputs: Any,
    modules: dict[str, nn.Module],
    grads: bool,
    target: Target,
    clone: set[str],
    selected: dict[str, int | None] | None = None,
) -> tuple[_Recorder, Any]:
    recorder = _Recorder(modules, grads, clone, selected)
    with removing(recorder.handles):
        if grads:
            run_inputs, leaves = _grad_leaves(inputs)
            with torch.enable_grad():
                output = call_model(model, run_inputs)
                score = target_score(output, target)
                wrt = leaves or [t for t in recorder.outputs.values() if t.requires_grad]
                if not score.requires_grad or not wrt:
                    raise ValueError(
                        "the target score does not depend on anything that requires grad; "
                        "pass floating-point inputs, or a model with trainable parameters"
                    )
                torch.autograd.grad(score, wrt, allow_unused=True)
        else:
            with torch.no_grad():
                output = call_model(model, inputs)
    return recorder, output


def capture(
    model: nn.Module,
    inputs: Any,
    layers: str | Iterable[str],
    grads: bool = False,
    target: Target = None,
    *,
    train: bool = False,
) -> Capture:
    """Run ``model`` on ``inputs`` once and return the chosen layers' outputs.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was (modes, parameters, buffers, hooks).
    inputs
        A tensor, a tuple/list of positional arguments, or a dict of keyword arguments. Moved to
        the model's device.
    layers
        A layer name (``named_modules()`` name) or a list of them. ``"name#k"`` picks call ``k``
        (0-based) of a module that runs several times in one forward; a plain name gives its last
        call.
    grads
        Also return the gradient of the target score with respect to each captured output.
    target
        With ``grads``: a class index, one index per sample, a callable on the output returning a
        scalar, or ``None`` for each sample's predicted class.
    train
        Run in train mode (dropout active, BatchNorm statistics updated) instead of eval mode.

    Returns
    -------
    Capture
    """
    check_model(model)
    modules, selected = resolve_calls(model, layers)
    inputs = move_to_device(inputs, model_device(model))
    clone: set[str] = set()
    with visual_mode(model, train):
        for _attempt in range(2):
            try:
                recorder, output = _run(model, inputs, modules, grads, target, clone, selected)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
            stale = recorder.modified_in_place()
            if not stale:
                break
            # A later in-place op overwrote these outputs: run again keeping copies of them.
            clone |= stale
    _check_recorded(model, recorder)
    gradients: dict[str, torch.Tensor] = {}
    if grads:
        for name, tensor in recorder.outputs.items():
            gradient = recorder.gradients.get(name)
            # A layer the target does not depend on has a zero gradient.
            gradients[name] = gradient if gradient is not None else torch.zeros_like(tensor)
    return Capture(
        activations=dict(recorder.outputs),
        gradients=gradients,
        output=_detach(output),
        calls=dict(recorder.calls),
    )


def _check_recorded(model: nn.Module, recorder: _Recorder) -> None:
    for name, type_name in recorder.bad_outputs.items():
        module = recorder.modules[name]
        raise ValueError(
            f"layer {name!r} ({type(module).__name__}) returns a {type_name}, not a tensor, so it "
            "cannot be captured as a map; pick a layer with a tensor output"
        )
    silent = [name for name, count in recorder.calls.items() if count == 0]
    if silent:
        compiled = hasattr(model, "_orig_mod")
        hint = (
            "the model is torch.compile'd, and compiled code skips hooks: pass model._orig_mod"
            if compiled
            else "it is not used by the model's forward for these inputs"
        )
        raise ValueError(f"layer(s) {', '.join(map(repr, silent))} did not run: {hint}")
    for name, call in recorder.selected.items():
        if call is not None and call >= recorder.calls[name]:
            base = split_call(name)[0]
            count = recorder.calls[name]
            times = "once" if count == 1 else f"{count} times"
            raise ValueError(
                f"layer {base!r} ran {times} in this forward, so {name!r} does not exist; valid "
                f"calls are {', '.join(f'{base}#{k}' for k in range(count))}"
            )


def dry_run(model: nn.Module, example_input: Any) -> dict[str, tuple[tuple[int, ...] | None, bool]]:
    """For every submodule that ran on ``example_input``: ``(output shape, output is a tensor)``.

    The shape is that of the first tensor in a tuple output (RNNs), taken on the module's first
    call. The model is left as it was.
    """
    check_model(model)
    seen: dict[str, tuple[tuple[int, ...] | None, bool]] = {}

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if name not in seen:
                tensor = first_tensor(output)
                shape = tuple(tensor.shape) if tensor is not None else None
                seen[name] = (shape, isinstance(output, torch.Tensor))

        return hook

    inputs = move_to_device(example_input, model_device(model))
    with model_lock(model):
        handles = [
            module.register_forward_hook(hook_for(name))
            for name, module in named_layers(model).items()
        ]
        with removing(handles), visual_mode(model), torch.no_grad():
            try:
                call_model(model, inputs)
            except (RuntimeError, IndexError) as error:
                raise input_error(model, inputs, error) from error
    return seen
