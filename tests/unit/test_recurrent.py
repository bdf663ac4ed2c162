"""recurrent_states against the modules' own outputs, the cell equations and autograd."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import modelviz_widgets as mv
from modelviz_widgets.capture.recurrent import recurrent_states

from ._support import assert_unchanged, model_snapshot

CELLS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


class Tagger(nn.Module):
    """Embedding -> recurrent layer (optionally on a packed batch) -> a class per sequence."""

    def __init__(self, cell: str, layers: int, bidirectional: bool, batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Embedding(20, 5)
        self.rnn = CELLS[cell](5, 6, num_layers=layers, bidirectional=bidirectional,
                               batch_first=batch_first)  # fmt: skip
        self.head = nn.Linear(6 * (2 if bidirectional else 1), 3)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(tokens)  # [B, T, 5]
        if not self.batch_first:
            x = x.transpose(0, 1)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=self.batch_first, enforce_sorted=False)
        out = self.rnn(x)[0]
        if lengths is not None:
            out = pad_packed_sequence(out, batch_first=self.batch_first)[0]
        if not self.batch_first:
            out = out.transpose(0, 1)
        return self.head(out.mean(dim=1))


def module_run(model: Tagger, tokens: torch.Tensor, lengths: torch.Tensor | None) -> tuple:
    """The recurrent module's own output and final state, from an independent hook."""
    store = {}
    handle = model.rnn.register_forward_hook(lambda m, a, out: store.setdefault("out", out))
    with torch.no_grad():
        model(tokens, lengths)
    handle.remove()
    output, state = store["out"]
    if lengths is not None:
        output = pad_packed_sequence(output, batch_first=True)[0]
    elif not model.batch_first:
        output = output.transpose(0, 1)
    return output, state


CASES = list(itertools.product(CELLS, (1, 2, 3), (False, True), (False, True), (False, True)))


@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,packed", CASES)
def test_states_equal_the_modules_own_outputs(cell, layers, bidirectional, batch_first, packed):
    torch.manual_seed(len(cell) * 7 + layers)
    model = Tagger(cell, layers, bidirectional, batch_first).eval()
    tokens = torch.randint(0, 20, (4, 7))
    lengths = torch.tensor([7, 3, 5, 1]) if packed else None
    states = recurrent_states(model, (tokens, lengths), "rnn")
    output, state = module_run(model, tokens, lengths)
    directions = 2 if bidirectional else 1
    top = states.hidden[-1]  # [directions, B, T, H]
    ours = torch.cat(list(top), dim=-1)  # batch first, directions side by side like the module
    torch.testing.assert_close(ours[:, : output.shape[1]], output, atol=1e-5, rtol=0)
    h_n = state[0] if cell == "LSTM" else state
    lengths_ = lengths if packed else torch.full((4,), 7)
    for layer, direction in itertools.product(range(layers), range(directions)):
        index = layer * directions + direction
        # The final state of the forward direction is at the last valid step, backward at step 0.
        last = lengths_ - 1 if direction == 0 else torch.zeros(4, dtype=torch.long)
        final = states.hidden[layer, direction, torch.arange(4), last]
        torch.testing.assert_close(final, h_n[index], atol=1e-5, rtol=0)
        if cell == "LSTM":
            final_cell = states.cell[layer, direction, torch.arange(4), last]
            torch.testing.assert_close(final_cell, state[1][index], atol=1e-5, rtol=0)
    padded = torch.arange(7)[None, :] >= lengths_[:, None]
    assert torch.all(states.hidden[:, :, padded] == 0)


def test_lower_layers_equal_a_stack_of_single_layer_modules():
    torch.manual_seed(3)
    deep = nn.LSTM(5, 6, num_layers=3, bidirectional=True, batch_first=True).eval()
    x = torch.randn(2, 8, 5)
    states = recurrent_states(deep, x)
    layer_input = x
    for layer in range(3):
        single = nn.LSTM(layer_input.shape[-1], 6, bidirectional=True, batch_first=True).eval()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            for suffix in ("", "_reverse"):
                getattr(single, f"{name}_l0{suffix}").data.copy_(
                    getattr(deep, f"{name}_l{layer}{suffix}")
                )
        with torch.no_grad():
            layer_input = single(layer_input)[0]
        ours = torch.cat([states.hidden[layer, 0], states.hidden[layer, 1]], dim=-1)
        torch.testing.assert_close(ours, layer_input, atol=1e-5, rtol=0)


def test_lstm_gates_reproduce_the_states():
    torch.manual_seed(4)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True).eval()
    states = recurrent_states(lstm, torch.randn(6, 2, 3))
    g = states.gates
    assert set(g) == {"input", "forget", "cell_candidate", "output"}
    for direction, order in ((0, range(6)), (1, range(5, -1, -1))):
        c_prev = torch.zeros(2, 2, 4)  # [layers, batch, units]
        for t in order:
            sl = (slice(None), direction, slice(None), t)
            c = g["forget"][sl] * c_prev + g["input"][sl] * g["cell_candidate"][sl]
            torch.testing.assert_close(c, states.cell[sl], atol=1e-6, rtol=0)
            h = g["output"][sl] * torch.tanh(c)
            torch.testing.assert_close(h, states.hidden[sl], atol=1e-6, rtol=0)
            c_prev = c


def test_gru_gates_reproduce_the_states():
    torch.manual_seed(5)
    gru = nn.GRU(3, 4, batch_first=True).eval()
    states = recurrent_states(gru, torch.randn(2, 5, 3))
    h_prev = torch.zeros(2, 4)
    for t in range(5):
        z, n = states.gates["update"][0, 0, :, t], states.gates["new"][0, 0, :, t]
        h = (1 - z) * n + z * h_prev
        torch.testing.assert_close(h, states.hidden[0, 0, :, t], atol=1e-6, rtol=0)
        # The reset gate enters through n: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
        r = states.gates["reset"][0, 0, :, t]
        assert torch.all((r > 0) & (r < 1))
        h_prev = h


def test_gradient_flow_equals_autograd_through_lstm_cells():
    torch.manual_seed(6)
    model = Tagger("LSTM", 1, True, True).eval()
    tokens = torch.randint(0, 20, (3, 6))
    states = recurrent_states(model, tokens, "rnn", grads=True, target=2)

    # Reference: the same bidirectional LSTM unrolled with nn.LSTMCell (torch's own cell), and
    # autograd's gradient of the same score with respect to every h_t.
    with torch.no_grad():
        x = model.embed(tokens)
    hidden = {0: [None] * 6, 1: [None] * 6}
    for direction, suffix, order in ((0, "", range(6)), (1, "_reverse", range(5, -1, -1))):
        cell = nn.LSTMCell(5, 6)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(model.rnn, f"{name}_l0{suffix}"))
        h = c = torch.zeros(3, 6)
        for t in order:
            h, c = cell(x[:, t], (h, c))
            hidden[direction][t] = h
    output = torch.cat([torch.stack(hidden[0], 1), torch.stack(hidden[1], 1)], dim=-1)
    score = model.head(output.mean(dim=1))[:, 2].sum()
    steps = hidden[0] + hidden[1]
    grads = torch.autograd.grad(score, steps)
    expected = torch.stack([g.norm(dim=1) for g in grads]).reshape(2, 6, 3).permute(0, 2, 1)
    torch.testing.assert_close(states.gradient_norms[0], expected, atol=1e-6, rtol=0)


def test_gradient_flow_through_time_matches_a_hand_unrolled_cell():
    torch.manual_seed(7)
    rnn = nn.RNN(3, 4, batch_first=True).eval()
    x = torch.randn(1, 5, 3)
    states = recurrent_states(rnn, x, grads=True, target=lambda out: out[0][:, -1].sum())
    h = torch.zeros(1, 4)
    hs = []
    for t in range(5):
        h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T
                       + rnn.bias_hh_l0)  # fmt: skip
        hs.append(h)
    grads = torch.autograd.grad(hs[-1].sum(), hs)
    expected = torch.stack([g.norm(dim=1) for g in grads], dim=1)
    torch.testing.assert_close(states.gradient_norms[0, 0], expected.detach(), atol=1e-6, rtol=0)
    assert states.gradient_norms[0, 0, 0, 0] < states.gradient_norms[0, 0, 0, -1]


def test_model_is_left_unchanged():
    model = Tagger("GRU", 2, True, False)
    model.train()
    before = model_snapshot(model)
    tokens = torch.randint(0, 20, (2, 5))
    recurrent_states(model, (tokens, torch.tensor([5, 2])), grads=True)
    recurrent_states(model, tokens)
    assert_unchanged(model, before)


def test_bad_layers_are_named():
    model = Tagger("LSTM", 1, False, True)
    with pytest.raises(ValueError, match=r"'head' is a Linear, not a recurrent layer.*rnn"):
        recurrent_states(model, torch.randint(0, 20, (1, 3)), "head")
    with pytest.raises(ValueError, match=r"unknown layer 'nope'.*valid recurrent layers are: rnn"):
        recurrent_states(model, torch.randint(0, 20, (1, 3)), "nope")
    with pytest.raises(ValueError, match="no nn.RNN, nn.LSTM or nn.GRU"):
        recurrent_states(nn.Linear(2, 2), torch.zeros(1, 2))


def test_exported():
    assert mv.recurrent_states is recurrent_states


def test_a_packed_sequence_given_as_the_input_of_a_bare_lstm():
    torch.manual_seed(8)
    lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True).eval()
    x = torch.randn(3, 5, 3)
    lengths = torch.tensor([2, 5, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    states = recurrent_states(lstm, packed)
    with torch.no_grad():
        output = pad_packed_sequence(lstm(packed)[0], batch_first=True)[0]
    torch.testing.assert_close(states.lengths, lengths)
    ours = torch.cat([states.hidden[0, 0], states.hidden[0, 1]], dim=-1)
    torch.testing.assert_close(ours, output, atol=1e-5, rtol=0)
    assert mv.HiddenStates(lstm, packed).n_samples == 3


def test_initial_state_given_as_hx_keyword_is_used():
    torch.manual_seed(9)

    class WithState(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            state = (torch.ones(1, x.shape[0], 4), torch.ones(1, x.shape[0], 4))
            return self.lstm(x, hx=state)[0]

    model = WithState().eval()
    x = torch.randn(2, 5, 3)
    states = recurrent_states(model, x, "lstm")
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(states.hidden[0, 0], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(states.output, expected, atol=1e-5, rtol=0)


def test_gradient_flow_of_a_frozen_model():
    torch.manual_seed(10)
    model = Tagger("GRU", 1, False, True).eval().requires_grad_(False)
    tokens = torch.randint(0, 20, (2, 4))
    states = recurrent_states(model, tokens, "rnn", grads=True, target=0)
    assert states.gradient_norms.shape == (1, 1, 2, 4)
    assert torch.all(states.gradient_norms > 0)
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
