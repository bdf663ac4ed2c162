"""HiddenStates driven as the browser drives it, checked against nn.LSTM's own outputs, autograd,
captum and a brute-force pattern search written here."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import modelviz_widgets as mv
from modelviz_widgets import wire

from ._support import FrontEnd, assert_unchanged, model_snapshot

HOSTILE = "<img src=x onerror=alert(1)>"


class Classifier(nn.Module):
    """Embedding -> (bi)LSTM -> linear on the last step, optionally on a packed batch."""

    def __init__(self, bidirectional: bool = True, layers: int = 1, cell: type = nn.LSTM) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 4)
        self.rnn = cell(4, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.head = nn.Linear(5 * (2 if bidirectional else 1), 3)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(tokens)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out = self.rnn(x)[0]
        if lengths is not None:
            out = pad_packed_sequence(out, batch_first=True)[0]
        return self.head(out[:, -1])


@pytest.fixture
def model() -> Classifier:
    torch.manual_seed(0)
    return Classifier().eval()


@pytest.fixture
def tokens() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randint(0, 12, (3, 6))


def lstm_output(model: Classifier, tokens: torch.Tensor) -> torch.Tensor:
    """The LSTM's own output [B, T, 2H], from an independent hook."""
    store = {}
    handle = model.rnn.register_forward_hook(lambda m, a, out: store.update(out=out[0]))
    with torch.no_grad():
        model(tokens)
    handle.remove()
    return store["out"]


def test_states_per_direction_equal_the_lstms_own_output(model, tokens):
    hs = mv.HiddenStates(model, tokens)
    assert hs.layer == "rnn" and hs.n_directions == 2 and hs.n_steps == 6 and hs.n_samples == 3
    assert hs.quantity_options == [
        "hidden", "cell", "input", "forget", "cell_candidate", "output", "gradient",
    ]  # fmt: skip
    output = lstm_output(model, tokens)
    shown = hs.current["states"]  # [directions, units, time]
    assert shown.shape == (2, 5, 6)
    np.testing.assert_allclose(shown[0].T, output[0, :, :5].numpy(), atol=1e-5)
    np.testing.assert_allclose(shown[1].T, output[0, :, 5:].numpy(), atol=1e-5)
    decoded = wire.decode(hs.states_data, hs.states_meta)
    step = (hs.states_meta["vmax"] - hs.states_meta["vmin"]) / 254
    assert np.abs(decoded - shown).max() <= step / 2 + 1e-6
    hs.sample = 2
    np.testing.assert_allclose(hs.current["states"][1].T, output[2, :, 5:].numpy(), atol=1e-5)
    hs.close()


def test_cell_state_equals_nn_lstm_run_on_each_prefix():
    torch.manual_seed(2)
    model = Classifier(bidirectional=False).eval()
    tokens = torch.randint(0, 12, (2, 5))
    hs = mv.HiddenStates(model, tokens, quantity="cell")
    with torch.no_grad():
        embedded = model.embed(tokens)
        for t in range(5):
            _, (_, c_n) = model.rnn(embedded[:, : t + 1])
            np.testing.assert_allclose(hs.current["states"][0, :, t], c_n[0, 0].numpy(), atol=1e-5)
    hs.close()


def test_timestep_from_the_browser_is_answered_from_the_cache(model, tokens, monkeypatch):
    hs = mv.HiddenStates(model, tokens)
    front = FrontEnd(hs)
    runs = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda *a: runs.append(1) or original(*a))
    front.set(timestep=4)
    assert runs == []
    updates = front.updates()
    assert len(front.messages) == len(updates) == 1
    assert set(updates[0]) == {"step_data", "step_meta"}
    assert hs.step_meta["rows"] == ["hidden", "cell", "input", "forget", "cell_candidate", "output"]
    output = lstm_output(model, tokens)
    np.testing.assert_allclose(hs.current["step"][0], output[0, 4, :5].numpy(), atol=1e-5)
    hs.direction = 1
    np.testing.assert_allclose(hs.current["step"][0], output[0, 4, 5:].numpy(), atol=1e-5)
    with pytest.raises(Exception, match=r"timestep 6 is out of range; valid values are 0..5"):
        hs.timestep = 6
    hs.close()


def test_gates_reproduce_the_next_cell_state(model, tokens):
    hs = mv.HiddenStates(model, tokens)
    rows = {}
    for t in (2, 3):
        hs.timestep = t
        rows[t] = dict(zip(hs.step_meta["rows"], hs.current["step"], strict=True))
    # The LSTM cell equation, written here: c_t = f * c_{t-1} + i * g.
    expected = rows[3]["forget"] * rows[2]["cell"] + rows[3]["input"] * rows[3]["cell_candidate"]
    np.testing.assert_allclose(rows[3]["cell"], expected, atol=1e-5)
    hs.close()


def reference_gradient_norms(model: Classifier, tokens: torch.Tensor, target: int) -> torch.Tensor:
    """d(score)/d(h_t) for a unidirectional LSTM, stepping nn.LSTM one step at a time."""
    embedded = model.embed(tokens).detach()
    batch = tokens.shape[0]
    h = torch.zeros(1, batch, 5)
    c = torch.zeros(1, batch, 5)
    states = []
    for t in range(tokens.shape[1]):
        _, (h, c) = model.rnn(embedded[:, t : t + 1], (h, c))
        states.append(h)
    score = model.head(h[0])[:, target].sum()
    grads = torch.autograd.grad(score, states)
    return torch.stack([g[0].norm(dim=1) for g in grads], dim=1)  # [B, T]


def test_gradient_quantity_equals_autograd_and_follows_the_target(monkeypatch):
    torch.manual_seed(3)
    model = Classifier(bidirectional=False).eval()
    tokens = torch.randint(0, 12, (2, 7))
    hs = mv.HiddenStates(model, tokens, quantity="gradient", target=1)
    expected = reference_gradient_norms(model, tokens, 1)
    assert hs.current["states"].shape == (1, 1, 7)
    np.testing.assert_allclose(hs.current["states"][0, 0], expected[0].numpy(), atol=1e-6)
    runs = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda *a: runs.append(1) or original(*a))
    hs.target = 2
    assert runs, "a target change must recompute the gradients"
    expected = reference_gradient_norms(model, tokens, 2)
    np.testing.assert_allclose(hs.current["states"][0, 0], expected[0].numpy(), atol=1e-6)
    assert hs.explained_target == 2
    with pytest.raises(Exception, match=r"valid targets are 0..2"):
        hs.target = 3
    hs.close()


def test_token_attribution_agrees_with_captum(model, tokens):
    hs = mv.HiddenStates(model, tokens, target=0)
    model.zero_grad(set_to_none=True)
    lig = LayerIntegratedGradients(model, model.embed)
    baseline = torch.zeros_like(tokens)
    reference = lig.attribute(tokens, baseline, target=0, n_steps=50).sum(dim=-1).detach()
    shown = hs.current["attribution"]
    scale = float(reference.abs().max())
    np.testing.assert_allclose(shown, reference[0].numpy(), atol=1e-5 * scale + 1e-7)
    assert hs.attribution_meta["scale"] == "symmetric"
    for parameter in model.parameters():
        parameter.grad = None
    hs.close()


def brute_force(values: np.ndarray, start: int, end: int, threshold: float) -> list[int]:
    """[time, units] of one sequence -> units on inside [start, end] and off elsewhere."""
    found = []
    for unit in range(values.shape[1]):
        column = values[:, unit]
        inside = all(column[t] >= threshold for t in range(start, end + 1))
        outside = all(column[t] < threshold for t in range(len(column)) if not start <= t <= end)
        if inside and outside:
            found.append(unit)
    return found


def test_pattern_search_matches_a_brute_force_search(model, tokens):
    hs = mv.HiddenStates(model, tokens, quantity="output", direction=1, threshold=0.5)
    assert hs.pattern_units == [] and hs.current["matches"].sum() == 0
    found_any = False
    for start in range(6):
        for end in range(start, 6):
            hs.pattern_start, hs.pattern_end = -1, -1
            hs.pattern_end = end
            hs.pattern_start = start
            values = hs.current["states"][1].T  # direction 1, [time, units]
            expected = brute_force(values, start, end, 0.5)
            assert hs.pattern_units == expected, (start, end)
            found_any |= bool(expected)
            all_states = np.stack(
                [_states_of(hs, sample)[1].T for sample in range(hs.n_samples)]
            )  # [B, T, U]
            if expected:
                on = (all_states[:, :, expected] >= 0.5).mean(axis=2)
                np.testing.assert_allclose(hs.current["matches"], on)
                assert [start, end] in [run[1:] for run in hs.pattern_runs if run[0] == 0]
    assert found_any, "the search should find units for some range"
    hs.close()


def _states_of(hs: mv.HiddenStates, sample: int) -> np.ndarray:
    shown = hs.sample
    hs.sample = sample
    values = hs.current["states"]
    hs.sample = shown
    return values


def test_tokens_are_kept_literally_and_their_count_is_checked(model, tokens):
    words = [["a", HOSTILE, "c", "d", "e", "f"]] * 3
    hs = mv.HiddenStates(model, tokens, tokens=words)
    assert hs.tokens[0][1] == HOSTILE
    hs.close()
    with pytest.raises(ValueError, match=r"sequence 1 has 5 tokens but 6 steps"):
        mv.HiddenStates(model, tokens, tokens=[words[0], words[0][:5], words[0]])
    with pytest.raises(ValueError, match=r"tokens for 1 sequences, but the batch has 3"):
        mv.HiddenStates(model, tokens, tokens=words[0])
    single = mv.HiddenStates(model, tokens[:1], tokens=words[0])
    assert single.tokens == [words[0]]
    single.close()


def test_packed_batch_with_lengths(model, tokens):
    lengths = torch.tensor([6, 3, 5])
    hs = mv.HiddenStates(model, tokens, lengths=lengths, tokens=[["w"] * n for n in (6, 3, 5)])
    hs.sample = 1
    assert hs.length == 3
    assert np.all(hs.current["states"][:, :, 3:] == 0)  # padded steps
    # The forward direction over a packed sequence equals the module run on the 3 valid tokens.
    output = lstm_output(model, tokens[1:2, :3])
    np.testing.assert_allclose(hs.current["states"][0, :, :3].T, output[0, :, :5], atol=1e-5)
    np.testing.assert_allclose(hs.current["states"][1, :, :3].T, output[0, :, 5:], atol=1e-5)
    hs.close()


def test_stacked_layers_and_gru():
    torch.manual_seed(4)
    model = Classifier(bidirectional=False, layers=2, cell=nn.GRU).eval()
    tokens = torch.randint(0, 12, (2, 4))
    hs = mv.HiddenStates(model, tokens, stacked_layer=1)
    assert hs.n_stacked_layers == 2
    assert hs.quantity_options == ["hidden", "reset", "update", "new", "gradient"]
    output = lstm_output(model, tokens)
    np.testing.assert_allclose(hs.current["states"][0].T, output[0].numpy(), atol=1e-5)
    hs.close()


def test_float_inputs_to_a_bare_lstm():
    torch.manual_seed(5)
    lstm = nn.LSTM(3, 4).eval()  # time first
    inputs = torch.randn(6, 2, 3)
    hs = mv.HiddenStates(lstm, inputs)
    with torch.no_grad():
        output, _ = lstm(inputs)
    np.testing.assert_allclose(hs.current["states"][0].T, output[:, 0].numpy(), atol=1e-5)
    assert hs.attribution_data == b"" and "attribution" not in hs.current
    hs.close()


def test_bad_arguments_are_named(model, tokens):
    with pytest.raises(ValueError, match=r"'head' is a Linear, not a recurrent layer.*rnn"):
        mv.HiddenStates(model, tokens, layer="head")
    with pytest.raises(ValueError, match=r"no nn.RNN, nn.LSTM or nn.GRU"):
        mv.HiddenStates(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) colour"):
        mv.HiddenStates(model, tokens, colour="red")
    hs = mv.HiddenStates(model, tokens)
    with pytest.raises(Exception, match=r"valid quantities are: hidden, cell"):
        hs.quantity = "attention"
    hs.close()


def test_hygiene_model_unchanged_after_twenty_widgets():
    torch.manual_seed(6)
    model = Classifier()
    model.train()  # a training model must be looked at in eval mode and left training
    model.head.weight.requires_grad_(False)
    tokens = torch.randint(0, 12, (2, 5))
    before = model_snapshot(model)
    for _ in range(20):
        hs = mv.HiddenStates(model, tokens, quantity="gradient")
        hs.timestep = 3
        hs.target = 1
        hs.close()
    gc.collect()
    assert_unchanged(model, before)
    assert model.training


class TwoLayers(nn.Module):
    """Two recurrent modules in a row: the layer control picks one."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 4)
        self.encoder = nn.GRU(4, 5, batch_first=True)
        self.decoder = nn.LSTM(5, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(self.embed(tokens))[0])[0][:, -1])


def test_layer_and_sample_changes_republish_from_the_browser(tokens):
    torch.manual_seed(7)
    model = TwoLayers().eval()
    hs = mv.HiddenStates(model, tokens)
    assert [option["name"] for option in hs.layer_options] == ["encoder", "decoder"]
    assert hs.layer == "encoder" and "cell" not in hs.quantity_options
    front = FrontEnd(hs)
    front.set(layer="decoder")
    assert hs.quantity_options[:2] == ["hidden", "cell"]
    with torch.no_grad():
        expected = model.decoder(model.encoder(model.embed(tokens))[0])[0]
    np.testing.assert_allclose(hs.current["states"][0].T, expected[0].numpy(), atol=1e-5)
    assert all(array.dtype == np.float32 for array in hs.current.values())
    before = len(front.messages)
    front.set(sample=2)
    assert len(front.messages) == before + 1  # one message for the whole redraw
    sent = front.updates()[-1]
    assert {"states_data", "step_data", "attribution_data", "matches_meta"} <= set(sent)
    np.testing.assert_allclose(hs.current["states"][0].T, expected[2].numpy(), atol=1e-5)
    hs.close()


def test_a_tuple_of_inputs_passes_through_like_lengths(model, tokens):
    lengths = torch.tensor([6, 3, 5])
    by_keyword = mv.HiddenStates(model, tokens, lengths=lengths)
    as_tuple = mv.HiddenStates(model, (tokens, lengths))
    np.testing.assert_array_equal(by_keyword.current["states"], as_tuple.current["states"])
    by_keyword.close()
    as_tuple.close()


def test_a_range_out_of_order_is_said_not_raised(model, tokens):
    hs = mv.HiddenStates(model, tokens, lengths=torch.tensor([6, 3, 5]), sample=1)
    front = FrontEnd(hs)
    front.set(pattern_start=2, pattern_end=1)
    assert hs.pattern_units == [] and hs.error == ""
    assert "start <= end < 3" in hs.matches_meta["problem"]
    front.set(pattern_end=2)
    assert hs.matches_meta["problem"] == ""
    front.set(quantity="gradient")
    assert "not gradients" in hs.matches_meta["problem"]
    hs.close()


def test_lengths_of_a_packed_batch_are_checked(model, tokens):
    with pytest.raises(ValueError, match=r"lengths must be \d+ integers, one per sequence"):
        mv.HiddenStates(model, tokens, lengths=[3])
    with pytest.raises(ValueError, match=r"between 1 and the padded length"):
        mv.HiddenStates(model, tokens, lengths=[tokens.shape[1] + 1] * tokens.shape[0])
