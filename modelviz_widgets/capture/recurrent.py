"""Hidden states, cell states and gates of nn.RNN / nn.LSTM / nn.GRU, recomputed from the module's
own weights for every layer, direction and timestep.

The module under study is run as part of the user's model; a forward hook swaps its output for the
recomputation (equal to it within float rounding), so every intermediate state is a tensor in the
autograd graph and its gradient can be read: the gradient flow back through time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .hooks import Target, removing, target_score, visual_mode
from .inputs import call_model, input_error, model_device, move_to_device
from .layers import check_model, named_layers

GATE_NAMES: dict[str, tuple[str, ...]] = {
    "LSTM": ("input", "forget", "cell_candidate", "output"),
    "GRU": ("reset", "update", "new"),
    "RNN": (),
}


@dataclass
class RecurrentStates:
    """Everything a recurrent layer computed, per layer, direction and timestep.

    Tensors are shaped ``[num_layers, num_directions, batch, time, units]`` and are zero at the
    padded steps of shorter sequences (as ``pad_packed_sequence`` leaves them). Direction 1 is the
    backward direction of a bidirectional layer, indexed by the same (forward) time axis.

    Attributes
    ----------
    kind
        ``"LSTM"``, ``"GRU"`` or ``"RNN"``.
    hidden
        The hidden state h_t (after the projection for an LSTM with ``proj_size``).
    cell
        The LSTM cell state c_t; ``None`` for GRU and RNN.
    gates
        Gate activations by name: LSTM ``input, forget, cell_candidate, output``; GRU
        ``reset, update, new``; none for a plain RNN.
    lengths
        Valid steps of each sequence, ``[batch]``.
    gradient_norms
        With a target: the L2 norm of d(target)/d(h_t) over units, ``[layers, directions, batch,
        time]``; ``None`` otherwise.
    output
        The model's own output, detached.
    """

    kind: str
    hidden: torch.Tensor
    cell: torch.Tensor | None
    gates: dict[str, torch.Tensor]
    lengths: torch.Tensor
    gradient_norms: torch.Tensor | None = None
    output: Any = None
    batch_first: bool = False


def recurrent_layers(model: nn.Module) -> dict[str, nn.RNNBase]:
    """Recurrent submodules by name; a bare ``nn.LSTM`` (or GRU, RNN) model is its own, named ""."""
    if isinstance(model, nn.RNNBase):
        return {"": model}
    return {name: m for name, m in named_layers(model).items() if isinstance(m, nn.RNNBase)}


def resolve_recurrent(model: nn.Module, layer: str | None) -> tuple[str, nn.RNNBase]:
    candidates = recurrent_layers(model)
    if not candidates:
        raise ValueError("the model has no nn.RNN, nn.LSTM or nn.GRU layer")
    if layer is None:
        return next(iter(candidates.items()))
    if layer not in candidates:
        module = named_layers(model).get(layer)
        what = (
            f"{layer!r} is a {type(module).__name__}, not"
            if module is not None
            else (f"unknown layer {layer!r}, not")
        )
        raise ValueError(
            f"{what} a recurrent layer; valid recurrent layers are: {', '.join(candidates)}"
        )
    return layer, candidates[layer]


def _weights(module: nn.RNNBase, layer: int, reverse: bool) -> dict[str, torch.Tensor | None]:
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {
        name: getattr(module, f"{name}{suffix}", None)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return nn.functional.linear(x, weight, bias)


def _run_direction(
    module: nn.RNNBase,
    kind: str,
    inputs: torch.Tensor,
    lengths: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    layer: int,
    reverse: bool,
) -> dict[str, list[torch.Tensor]]:
    """One layer and direction over ``inputs`` ``[B, T, F]``: per-step tensors ``[B, U]``."""
    w = _weights(module, layer, reverse)
    assert w["weight_ih"] is not None and w["weight_hh"] is not None
    # The input projection of every step at once; only the recurrence is sequential.
    projected = _affine(inputs, w["weight_ih"], w["bias_ih"])
    steps = range(inputs.shape[1] - 1, -1, -1) if reverse else range(inputs.shape[1])
    h, c = h0, c0
    record: dict[str, list[torch.Tensor]] = {"carried": [], "hidden": [], "cell": []}
    for name in GATE_NAMES[kind]:
        record[name] = []
    per_step: dict[int, dict[str, torch.Tensor]] = {}
    for t in steps:
        valid = (t < lengths).unsqueeze(1)
        recurrent = _affine(h, w["weight_hh"], w["bias_hh"])
        if kind == "LSTM":
            assert c is not None
            i, f, g, o = (projected[:, t] + recurrent).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c_new = f * c + i * g
            h_new = o * torch.tanh(c_new)
            if w["weight_hr"] is not None:
                h_new = nn.functional.linear(h_new, w["weight_hr"])
            c = torch.where(valid, c_new, c)
            gates = {"input": i, "forget": f, "cell_candidate": g, "output": o}
        elif kind == "GRU":
            x_r, x_z, x_n = projected[:, t].chunk(3, dim=1)
            h_r, h_z, h_n = recurrent.chunk(3, dim=1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            h_new = (1 - z) * n + z * h
            gates = {"reset": r, "update": z, "new": n}
        else:
            pre = projected[:, t] + recurrent
            h_new = torch.tanh(pre) if module.nonlinearity == "tanh" else torch.relu(pre)
            gates = {}
        # The carried state is what the next step and the gradient flow see; padding keeps it.
        h = torch.where(valid, h_new, h)
        zero = torch.zeros((), dtype=h.dtype, device=h.device)
        step = {"carried": h, "hidden": torch.where(valid, h, zero)}
        if c is not None:
            step["cell"] = torch.where(valid, c, zero)
        for name, value in gates.items():
            step[name] = torch.where(valid, value, zero)
        per_step[t] = step
    for t in range(inputs.shape[1]):
        for name, value in per_step[t].items():
            record[name].append(value)
    record["final_hidden"] = [h]
    if c is not None:
        record["final_cell"] = [c]
    return record


def unroll(module: nn.RNNBase, inputs: Any, state: Any = None) -> tuple[Any, dict[str, Any]]:
    """Recompute ``module(inputs, state)`` step by step.

    Returns the module's output structure (output, h_n[, c_n]) built from the recomputation, and the
    per-step record: for each layer and direction, lists of per-step tensors keyed by quantity.
    """
    kind = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(module.mode, module.mode)
    packed = isinstance(inputs, PackedSequence)
    if packed:
        padded, lengths = pad_packed_sequence(inputs, batch_first=True)
    else:
        if inputs.dim() == 2:  # an unbatched sequence [T, F]
            raise ValueError("unbatched sequences are not supported; add a batch dimension")
        padded = inputs if module.batch_first else inputs.transpose(0, 1)
        lengths = torch.full((padded.shape[0],), padded.shape[1], dtype=torch.long)
    lengths_device = lengths.to(padded.device)
    batch = padded.shape[0]
    directions = 2 if module.bidirectional else 1
    hidden_size = module.proj_size or module.hidden_size
    # A given initial state is in batch order, as is the padded batch (the module itself permutes
    # it into the packing order and back).
    h0_all, c0_all = _initial_state(module, kind, state, batch, directions, padded)
    layer_input = padded
    records: list[list[dict[str, list[torch.Tensor]]]] = []
    for layer in range(module.num_layers):
        per_direction = []
        for direction in range(directions):
            index = layer * directions + direction
            c0 = c0_all[index] if c0_all is not None else None
            per_direction.append(
                _run_direction(
                    module,
                    kind,
                    layer_input,
                    lengths_device,
                    h0_all[index],
                    c0,
                    layer,
                    direction == 1,
                )
            )
        records.append(per_direction)
        layer_input = torch.cat(
            [torch.stack(record["hidden"], dim=1) for record in per_direction], dim=2
        )
    output_padded = layer_input
    h_n = torch.stack([r["final_hidden"][0] for per in records for r in per])
    assert h_n.shape[-1] == hidden_size
    if packed:
        output: Any = _repack(output_padded, lengths, inputs)
    else:
        output = output_padded if module.batch_first else output_padded.transpose(0, 1)
    if kind == "LSTM":
        c_n = torch.stack([r["final_cell"][0] for per in records for r in per])
        result: Any = (output, (h_n, c_n))
    else:
        result = (output, h_n)
    return result, {"kind": kind, "records": records, "lengths": lengths}


def _initial_state(
    module: nn.RNNBase,
    kind: str,
    state: Any,
    batch: int,
    directions: int,
    like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    layers = module.num_layers * directions
    hidden_size = module.proj_size or module.hidden_size
    zeros_h = like.new_zeros(layers, batch, hidden_size)
    zeros_c = like.new_zeros(layers, batch, module.hidden_size) if kind == "LSTM" else None
    if state is None:
        return zeros_h, zeros_c
    if kind == "LSTM":
        h0, c0 = state
        return h0, c0
    return state, None


def _repack(padded: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """``padded`` (batch first, batch order) packed exactly as ``like`` was."""
    order = like.sorted_indices
    if order is None:
        order = torch.arange(padded.shape[0], device=padded.device)
    packed = pack_padded_sequence(
        padded[order], lengths[order.cpu()], batch_first=True, enforce_sorted=True
    )
    return PackedSequence(packed.data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _stack(records: list[list[dict[str, list[torch.Tensor]]]], name: str) -> torch.Tensor:
    """``[layers, directions, batch, time, units]`` from the per-step lists."""
    return torch.stack([torch.stack([torch.stack(r[name], dim=1) for r in per]) for per in records])


def recurrent_states(
    model: nn.Module,
    inputs: Any,
    layer: str | None = None,
    *,
    target: Target | Callable[[Any], torch.Tensor] = None,
    grads: bool = False,
) -> RecurrentStates:
    """Hidden states, cell states and gates of a recurrent layer, recomputed from its weights.

    Parameters
    ----------
    model
        Any ``nn.Module`` containing the recurrent layer; left exactly as it was.
    inputs
        The model's inputs (a tensor, a tuple of arguments or a dict of keyword arguments). The
        recurrent layer may receive a padded tensor or a ``PackedSequence``.
    layer
        Name of an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` submodule; by default the first one.
    target, grads
        With ``grads=True``, also the norm of d(target)/d(h_t) for every layer, direction and
        timestep; ``target`` as in :func:`modelviz_widgets.capture` (``None``: predicted class).

    Returns
    -------
    RecurrentStates
    """
    check_model(model)
    name, module = resolve_recurrent(model, layer)
    inputs = move_to_device(inputs, model_device(model))
    seen: dict[str, Any] = {}

    def replace_output(
        mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> Any:
        if "records" in seen:  # a module run twice: the first run is the one recorded
            return output
        state = args[1] if len(args) > 1 else kwargs.get("hx")
        sequence = _gradient_leaf(args[0]) if grads else args[0]
        result, info = unroll(module, sequence, state)
        seen.update(info)
        return result

    # visual_mode first: it holds the model's lock, so no other thread's forward sees this hook.
    with (
        visual_mode(model),
        removing([module.register_forward_hook(replace_output, with_kwargs=True)]),
    ):
        try:
            with torch.enable_grad() if grads else torch.no_grad():
                output = call_model(model, inputs)
                if "records" not in seen:
                    raise ValueError(f"layer {name!r} did not run during the forward pass")
                records = seen["records"]
                gradient_norms = None
                if grads:
                    gradient_norms = _gradient_norms(output, target, records)
        except (RuntimeError, IndexError) as error:
            raise input_error(model, inputs, error) from error
    kind = seen["kind"]
    detach = lambda tensor: tensor.detach()  # noqa: E731
    hidden = detach(_stack(records, "hidden"))
    cell = detach(_stack(records, "cell")) if kind == "LSTM" else None
    gates = {gate: detach(_stack(records, gate)) for gate in GATE_NAMES[kind]}
    return RecurrentStates(
        kind=kind,
        hidden=hidden,
        cell=cell,
        gates=gates,
        lengths=seen["lengths"],
        gradient_norms=gradient_norms,
        output=output.detach() if isinstance(output, torch.Tensor) else output,
        batch_first=module.batch_first,
    )


def _gradient_leaf(sequence: Any) -> Any:
    """The layer's input as a leaf that requires grad when nothing before it does (a frozen or
    integer-input model), so the gradient reaches every step without touching a parameter."""
    if isinstance(sequence, PackedSequence):
        data = _gradient_leaf(sequence.data)
        return PackedSequence(
            data, sequence.batch_sizes, sequence.sorted_indices, sequence.unsorted_indices
        )
    floating = isinstance(sequence, torch.Tensor) and sequence.is_floating_point()
    if floating and not sequence.requires_grad:
        return sequence.detach().requires_grad_(True)
    return sequence


def _gradient_norms(
    output: Any, target: Any, records: list[list[dict[str, list[torch.Tensor]]]]
) -> torch.Tensor:
    steps = [h for per in records for r in per for h in r["carried"]]
    score = target_score(output, target)
    if not score.requires_grad:
        raise ValueError("the target score does not depend on the recurrent layer")
    grads = torch.autograd.grad(score, steps, allow_unused=True)
    norms = [
        torch.zeros(h.shape[0], device=h.device) if g is None else g.norm(dim=1)
        for h, g in zip(steps, grads, strict=True)
    ]
    n_layers, n_dirs = len(records), len(records[0])
    time = len(records[0][0]["hidden"])
    stacked = torch.stack(norms).reshape(n_layers, n_dirs, time, -1).permute(0, 1, 3, 2)
    return stacked.detach()
