"""HiddenStates: a recurrent layer's states over time, both directions, gates, pattern search."""

from __future__ import annotations

from typing import Any

import torch
import traitlets
from torch import nn

from ..capture.layers import check_model
from ..capture.patterns import search_pattern
from ..capture.recurrent import (
    GATE_NAMES,
    RecurrentStates,
    recurrent_states,
    resolve_recurrent,
)
from ..capture.tokens import token_attribution
from .base import ModelWidget, load_bundle
from .sequences import (
    final_step_logits,
    normalize_tokens,
    recurrent_layer_options,
    with_lengths,
)

MAX_RUNS = 50


class HiddenStates(ModelWidget):
    """A recurrent layer's hidden state (or cell state, a gate, the gradient) per timestep and unit.

    The forward and backward directions of a bidirectional layer are drawn side by side, with the
    tokens on the time axis coloured by their attribution to the target (red raises it, blue
    lowers it). Moving ``timestep`` is answered from the cached states; changing ``layer``
    re-runs the model; changing ``target`` recomputes the gradients.

    Parameters
    ----------
    model
        A model with an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` layer (or one itself); left unchanged.
    inputs
        Token ids ``[batch, time]`` for a model with an embedding, float sequences, or a tuple of
        positional arguments (for instance ``(tokens, lengths)``).
    tokens
        The words: a list of strings for one sequence, or one list per sequence.
    layer
        Name of the recurrent layer to open on; by default the first one.
    lengths
        Valid steps of each sequence, passed to the model as its second argument.
    """

    _esm = load_bundle("hidden_states")
    _selections = frozenset(
        {"layer", "stacked_layer", "direction", "quantity", "sample", "timestep", "target"}
        | {"pattern_start", "pattern_end", "threshold", "attribution_method"}
        | {"encoding", "byte_budget"}
    )

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Name of the recurrent layer shown (a ``named_modules()`` name; "" for a bare module)."""

    layer_options = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Recurrent layers: ``{name, module_type, num_layers, bidirectional, hidden_size}``."""

    stacked_layer = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Which of the module's stacked layers (``num_layers``) is shown."""

    n_stacked_layers = traitlets.Int(1).tag(sync=True)
    """``num_layers`` of the recurrent layer shown."""

    direction = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Direction of the step view and the pattern search: 0 forward, 1 backward."""

    n_directions = traitlets.Int(1).tag(sync=True)
    """2 for a bidirectional layer, else 1."""

    quantity = traitlets.Unicode("hidden").tag(sync=True, echo_update=False)
    """What is drawn: "hidden", "cell" (LSTM), a gate, or "gradient" (norm of d target / d h_t)."""

    quantity_options = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Quantities the layer has."""

    sample = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Sequence of the batch shown."""

    n_samples = traitlets.Int(1).tag(sync=True)
    """Number of sequences in the batch."""

    timestep = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Highlighted step, whose state vector and gates are shown."""

    n_steps = traitlets.Int(1).tag(sync=True)
    """Length of the time axis (the longest sequence)."""

    length = traitlets.Int(1).tag(sync=True)
    """Valid steps of the sequence shown."""

    target = traitlets.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Class whose score the gradient and attribution explain; None: each sequence's prediction."""

    n_classes = traitlets.Int(0).tag(sync=True)
    """Number of classes of the output (of its last step for a per-step output)."""

    explained_target = traitlets.Int(0).tag(sync=True)
    """Class explained for the sequence shown (``target``, or its predicted class)."""

    tokens = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    """The words of each sequence (empty: steps are labelled by number)."""

    attribution_method = traitlets.Enum(
        ["integrated_gradients", "gradient"], default_value="integrated_gradients"
    ).tag(sync=True, echo_update=False)
    """Per-token attribution on the embedding: signed "integrated_gradients" or "gradient" norm."""

    pattern_start = traitlets.Int(-1).tag(sync=True, echo_update=False)
    """First step of the pattern range in the sequence shown; -1: no pattern search."""

    pattern_end = traitlets.Int(-1).tag(sync=True, echo_update=False)
    """Last step (inclusive) of the pattern range."""

    threshold = traitlets.Float(0.5).tag(sync=True, echo_update=False)
    """A unit is on at a step when its value is at least this."""

    pattern_units = traitlets.List(traitlets.Int()).tag(sync=True)
    """Units on throughout the range and off at every other step of the sequence shown."""

    pattern_runs = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    """Where those units fire together: ``[sample, start, end]`` runs (at most 50)."""

    states_data = traitlets.Bytes(b"").tag(sync=True)
    """The quantity for the sequence shown, ``[directions, units, time]`` (gradient: 1 unit)."""

    states_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``states_data``."""

    step_data = traitlets.Bytes(b"").tag(sync=True)
    """The highlighted step in the selected direction, ``[rows, units]``, rows in ``meta.rows``."""

    step_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``step_data``."""

    attribution_data = traitlets.Bytes(b"").tag(sync=True)
    """Per-token attribution of the sequence shown, ``[time]``; empty without an embedding."""

    attribution_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``attribution_data``."""

    matches_data = traitlets.Bytes(b"").tag(sync=True)
    """Fraction of the pattern units on, per sequence and step, ``[batch, time]``."""

    matches_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``matches_data``."""

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        tokens: Any = None,
        layer: str | None = None,
        lengths: Any = None,
        **kwargs: Any,
    ) -> None:
        self._model: nn.Module | None = check_model(model)
        self._inputs: Any = with_lengths(inputs, lengths)
        self._states: RecurrentStates | None = None
        self._gradients: torch.Tensor | None = None
        self._attribution: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self._ready = False
        options = recurrent_layer_options(model)
        self._embedded = any(isinstance(m, nn.Embedding) for m in model.modules())
        # Selections are validated against the layer's sizes, known once it has run.
        selections = {
            name: kwargs.pop(name)
            for name in list(kwargs)
            if name in self._selections and name not in ("encoding", "byte_budget")
        }
        super().__init__(layer_options=options, **kwargs)
        self.layer = layer if layer is not None else options[0]["name"]
        self._load_layer()
        for name, value in selections.items():
            setattr(self, name, value)
        states = self._states
        assert states is not None
        self.tokens = normalize_tokens(tokens, self.n_samples, self.n_steps, states.lengths.cpu())
        self._ready = True
        self._publish_all()

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        assert self._model is not None
        return resolve_recurrent(self._model, str(proposal["value"]))[0]

    @traitlets.validate("quantity")
    def _valid_quantity(self, proposal: dict[str, Any]) -> str:
        if self.quantity_options and proposal["value"] not in self.quantity_options:
            raise ValueError(
                f"unknown quantity {proposal['value']!r}; valid quantities are: "
                f"{', '.join(self.quantity_options)}"
            )
        return str(proposal["value"])

    @traitlets.validate("stacked_layer", "direction", "sample", "timestep")
    def _valid_index(self, proposal: dict[str, Any]) -> int:
        name = proposal["trait"].name
        count = {
            "stacked_layer": self.n_stacked_layers,
            "direction": self.n_directions,
            "sample": self.n_samples,
            "timestep": self.n_steps,
        }[name]
        return self._in_range(name, int(proposal["value"]), count)

    @traitlets.validate("target")
    def _valid_target(self, proposal: dict[str, Any]) -> int | None:
        return self._valid_class(proposal["value"], self.n_classes)

    # -- answering selections --

    @traitlets.observe("layer")
    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._ready:
            try:
                self._load_layer()
            except Exception:
                # Keep showing the layer whose states are cached; the error is on screen.
                self.set_trait("layer", change["old"])
                raise
            self._publish_all()

    @traitlets.observe(
        "stacked_layer", "direction", "quantity", "sample", "encoding", "byte_budget"
    )
    def _on_view(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._publish_all()

    @traitlets.observe("threshold", "pattern_start", "pattern_end")
    def _on_pattern(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._run_guarded(lambda: self._apply(self._pattern_payload()))

    @traitlets.observe("timestep")
    def _on_timestep(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._run_guarded(lambda: self._apply(self._step_payload()))

    @traitlets.observe("target", "attribution_method")
    def _on_target(self, change: dict[str, Any]) -> None:
        if not self._ready:
            return
        if change["name"] == "target":
            self._gradients = None
            self._targets = None
        self._attribution = None
        self._publish_all()

    def _run_guarded(self, work: Any) -> None:
        try:
            work()
        except Exception as error:
            self._fail(error)
            raise

    def _load_layer(self) -> None:
        """Run the model with the selected recurrent layer unrolled; cache every state."""
        assert self._model is not None
        try:
            states = recurrent_states(self._model, self._inputs, self.layer)
        except Exception as error:
            self._fail(error)
            raise
        self._states = states
        self._gradients = None
        self._targets = None
        layers, directions, batch, time, _ = states.hidden.shape
        quantities = ["hidden"] + (["cell"] if states.cell is not None else [])
        quantities += [*GATE_NAMES[states.kind], "gradient"]
        try:
            n_classes = int(final_step_logits(states.output).shape[1])
        except TypeError:
            n_classes = 0
        with self.hold_sync():
            self.n_samples = batch
            self.n_steps = time
            self.n_stacked_layers = layers
            self.n_directions = directions
            self.n_classes = n_classes
            self.quantity_options = quantities
            self.set_trait("stacked_layer", min(self.stacked_layer, layers - 1))
            self.set_trait("direction", min(self.direction, directions - 1))
            self.set_trait("sample", min(self.sample, batch - 1))
            self.set_trait("timestep", min(self.timestep, time - 1))
            if self.quantity not in quantities:
                self.set_trait("quantity", "hidden")

    def _target_indices(self) -> torch.Tensor:
        """One class index per sequence: ``target`` or each sequence's prediction."""
        if self._targets is None:
            assert self._states is not None
            logits = final_step_logits(self._states.output)
            if self.target is None:
                self._targets = logits.argmax(dim=1)
            else:
                self._targets = torch.full((logits.shape[0],), self.target, dtype=torch.long)
        return self._targets

    def _explained(self) -> int:
        """The class explained for the sequence shown (0 when the output has no classes)."""
        return int(self._target_indices()[self.sample]) if self.n_classes else 0

    def _score(self, output: Any) -> torch.Tensor:
        logits = final_step_logits(output)
        index = self._target_indices().to(logits.device)
        return logits.gather(1, index[:, None]).sum()

    def _gradient_norms(self) -> torch.Tensor:
        if self._gradients is None:
            assert self._model is not None
            states = recurrent_states(
                self._model, self._inputs, self.layer, target=self._score, grads=True
            )
            assert states.gradient_norms is not None
            self._gradients = states.gradient_norms
        return self._gradients

    def _quantity_values(self, quantity: str) -> torch.Tensor:
        """``[layers, directions, batch, time, units]`` of a quantity (gradient: 1 unit)."""
        states = self._states
        assert states is not None
        if quantity == "hidden":
            return states.hidden
        if quantity == "cell":
            assert states.cell is not None
            return states.cell
        if quantity == "gradient":
            return self._gradient_norms().unsqueeze(-1)
        return states.gates[quantity]

    # -- payloads --

    def _publish_all(self) -> None:
        def publish() -> None:
            assert self._states is not None
            # The payloads read these, and everything goes out as one message.
            self.length = int(self._states.lengths[self.sample])
            self.explained_target = self._explained()
            updates = {
                **self._states_payload(),
                **self._step_payload(),
                **self._attribution_payload(),
                **self._pattern_payload(),
            }
            self._apply(updates)

        with self.hold_sync():
            self._run_guarded(publish)

    def _meta(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "stacked_layer": self.stacked_layer,
            "quantity": self.quantity,
            "sample": self.sample,
        }

    def _states_payload(self) -> dict[str, Any]:
        values = self._quantity_values(self.quantity)[self.stacked_layer, :, self.sample]
        scale = "auto" if self.quantity != "gradient" else "linear"
        # Never shrunk: the view maps each column to a timestep (tokens, clicks, the highlight).
        return self._payload(
            "states", values.transpose(1, 2), extra_meta=self._meta(), scale=scale, byte_budget=None
        )

    def _step_payload(self) -> dict[str, Any]:
        states = self._states
        assert states is not None
        names = ["hidden"] + (["cell"] if states.cell is not None else [])
        names += list(GATE_NAMES[states.kind])
        width = self._quantity_values(self.quantity).shape[-1]
        if self.quantity != "gradient":
            names = [n for n in names if self._quantity_values(n).shape[-1] == width]
        index = (self.stacked_layer, self.direction, self.sample, self.timestep)
        rows = torch.stack([self._quantity_values(name)[index] for name in names])
        meta = {**self._meta(), "rows": names, "timestep": self.timestep}
        return self._payload("step", rows, extra_meta=meta, byte_budget=None)

    def _attribution_payload(self) -> dict[str, Any]:
        if not self._embedded or not self.n_classes:
            self._current.pop("attribution", None)
            return {"attribution_data": b"", "attribution_meta": {}}
        if self._attribution is None:
            assert self._model is not None
            self._attribution = token_attribution(
                self._model,
                self._inputs,
                target=self._target_indices(),
                method=self.attribution_method,
            )
        values = self._attribution[self.sample, : self.n_steps]
        meta = {"method": self.attribution_method, "target": self._explained()}
        return self._payload("attribution", values, extra_meta=meta, scale="symmetric")

    def _pattern_payload(self) -> dict[str, Any]:
        """The pattern search over the batch for the range selected in the sequence shown."""
        units: list[int] = []
        scores = torch.zeros(self.n_samples, self.n_steps)
        runs: list[tuple[int, int, int]] = []
        start, end = self.pattern_start, self.pattern_end
        # A range half set or out of order while the controls move is said, not raised.
        problem = ""
        if start < 0 or end < 0:
            pass
        elif self.quantity == "gradient":
            problem = "the pattern search works on hidden, cell and gate values, not gradients"
        elif not start <= end < self.length:
            problem = f"select a range start <= end < {self.length} (got {start}..{end})"
        else:
            assert self._states is not None
            values = self._quantity_values(self.quantity)[self.stacked_layer, self.direction]
            units, scores, runs = search_pattern(
                values, self.sample, start, end, self.threshold, self._states.lengths.cpu()
            )
        payload = self._payload(
            "matches",
            scores,
            extra_meta={"units": units, "problem": problem},
            scale="linear",
            byte_budget=None,
        )
        return {
            "pattern_units": units,
            "pattern_runs": [list(run) for run in runs[:MAX_RUNS]],
            **payload,
        }

    def _release(self) -> None:
        self._model = None
        self._inputs = None
        self._states = None
        self._gradients = None
        self._attribution = None
        super()._release()
