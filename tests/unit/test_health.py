"""layer_health() against figures computed by hand with torch, badges, and model hygiene."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import Badge, LayerHealth, layer_health, worst_layer
from modelviz_widgets.capture.inputs import InputShapeError

from ._support import assert_unchanged, model_snapshot


class Branches(nn.Module):
    """A shared stem, three parallel branches (dead, saturated, healthy), concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        dead, saturating = nn.Linear(16, 8), nn.Linear(16, 8)
        with torch.no_grad():
            dead.bias.fill_(-100.0)  # never fires
            saturating.weight.mul_(100.0)  # pinned at 0 or 1
        self.a = nn.Sequential(dead, nn.ReLU())
        self.b = nn.Sequential(saturating, nn.Sigmoid())
        self.c = nn.Sequential(nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.head(torch.cat([self.a(h), self.b(h), self.c(h)], dim=1))


@pytest.fixture
def branches() -> Branches:
    torch.manual_seed(0)
    return Branches()


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(64, 6)


def kinds(layer: LayerHealth) -> set[str]:
    return {badge.kind for badge in layer.badges}


def test_dead_and_saturated_branches_get_badges_healthy_layers_none(branches, x):
    health = layer_health(branches, x)
    assert list(health) == ["stem.0", "stem.1", "a.0", "a.1", "b.0", "b.1", "c.0", "c.1", "head"]
    assert "dead" in kinds(health["a.1"])
    assert "saturated" in kinds(health["b.1"])
    for name in ("stem.0", "stem.1", "c.0", "c.1", "head"):
        assert health[name].badges == (), name
        assert health[name].severity == 0.0
    assert worst_layer(health) in ("a.1", "b.1")
    dead = next(badge for badge in health["a.1"].badges if badge.kind == "dead")
    assert dead.level == "warning" and "100%" in dead.message
    saturated = next(badge for badge in health["b.1"].badges if badge.kind == "saturated")
    assert f"{health['b.1'].saturated_fraction:.0%}" in saturated.message


def test_fractions_equal_a_hand_computation(branches, x):
    health = layer_health(branches, x)
    with torch.no_grad():
        h = torch.relu(branches.stem[0](x))
        stem_dead = 1 - (h > 0).any(dim=0).float().mean()
        a_dead = 1 - (branches.a[0](h) > 0).any(dim=0).float().mean()
        c_dead = 1 - (branches.c[0](h) > 0).any(dim=0).float().mean()
        s = torch.sigmoid(branches.b[0](h))
        saturated = ((s < 0.01) | (s > 0.99)).float().mean()
    assert health["a.1"].dead_fraction == pytest.approx(float(a_dead)) == 1.0
    assert health["stem.1"].dead_fraction == pytest.approx(float(stem_dead))
    assert health["c.1"].dead_fraction == pytest.approx(float(c_dead))
    assert health["b.1"].saturated_fraction == pytest.approx(float(saturated))
    assert 0.5 <= float(saturated) < 1.0
    assert health["b.0"].dead_fraction is None and health["b.0"].saturated_fraction is None
    assert health["a.1"].saturated_fraction is None


def test_gradient_rms_equals_autograd_of_the_predicted_class_score(branches, x):
    health = layer_health(branches, x)
    h_pre = branches.stem[0](x)
    h = torch.relu(h_pre)
    a = torch.relu(branches.a[0](h))
    b = torch.sigmoid(branches.b[0](h))
    c_pre = branches.c[0](h)
    c = torch.relu(c_pre)
    logits = branches.head(torch.cat([a, b, c], dim=1))
    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    grads = torch.autograd.grad(score, [h_pre, h, c_pre, c, logits])
    for name, grad in zip(["stem.0", "stem.1", "c.0", "c.1", "head"], grads, strict=True):
        expected = grad.square().mean().sqrt().item()
        assert health[name].grad_rms == pytest.approx(expected, rel=1e-5), name
    assert health["head"].grad_rms == pytest.approx(1 / math.sqrt(4))
    # Behind the dead ReLU the gradient is exactly zero: vanishing, ranked below "dead".
    assert health["a.0"].grad_rms == 0.0
    assert kinds(health["a.0"]) == {"vanishing"}
    assert health["a.0"].severity < health["a.1"].severity


def test_a_nan_weight_is_flagged_where_it_starts(branches, x):
    broken = copy.deepcopy(branches)
    with torch.no_grad():
        broken.c[0].weight[0, 0] = float("nan")
    health = layer_health(broken, x)
    with torch.no_grad():
        c_out = broken.c[0](torch.relu(broken.stem[0](x)))
    expected = int((~torch.isfinite(c_out)).sum())
    assert expected > 0
    assert health["c.0"].nonfinite_outputs == expected
    nonfinite = [badge for badge in health["c.0"].badges if badge.kind == "nonfinite"]
    assert nonfinite and nonfinite[0].level == "error"
    assert worst_layer(health) == "c.0"
    assert "nonfinite" in kinds(health["head"])
    # The NaN weight also poisons the gradient flowing back into the stem.
    assert health["stem.1"].nonfinite_outputs == 0 and health["stem.1"].nonfinite_grads > 0
    assert "nonfinite" in kinds(health["stem.1"])
    assert "nonfinite" not in kinds(layer_health(branches, x)["c.0"])


def test_vanishing_and_exploding_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3))
    x = torch.randn(16, 4)
    with torch.no_grad():
        model[1].weight.mul_(1e-9)
    health = layer_health(model, x, target=0)
    assert kinds(health["0"]) == {"vanishing"}
    assert all(health[name].badges == () for name in ("1", "2", "3"))
    with torch.no_grad():
        model[1].weight.mul_(1e9 * 1e9)
    health = layer_health(model, x, target=0)
    assert kinds(health["0"]) == {"exploding"}
    assert all(health[name].badges == () for name in ("1", "2", "3"))


def test_a_module_called_twice_is_one_entry_over_both_calls():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(3, 5)
            self.second = nn.Linear(5, 5)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.second(self.act(self.first(x))))

    torch.manual_seed(0)
    model = Twice()
    with torch.no_grad():
        model.first.bias.copy_(torch.tensor([-50.0, -50.0, -50.0, 0.0, 0.0]))
    x = torch.randn(10, 3)
    health = layer_health(model, x)
    assert list(health) == ["first", "second", "act"]
    with torch.no_grad():
        one = model.first(x)
        two = model.second(torch.relu(one))
    dead = (~(one > 0).any(0)).sum() + (~(two > 0).any(0)).sum()
    assert health["act"].dead_fraction == pytest.approx(float(dead) / 10)


def test_dead_badge_needs_enough_samples(branches, x):
    few = layer_health(branches, x[:3])
    assert few["a.1"].dead_fraction == 1.0
    assert "dead" not in kinds(few["a.1"])


def test_trained_demo_cnn_gets_no_badges():
    images, _ = mv.demo.load_digits()
    health = layer_health(mv.demo.digits_cnn(), images)
    assert {name: layer.badges for name, layer in health.items() if layer.badges} == {}
    assert worst_layer(health) is None
    assert health["features.relu2"].dead_fraction is not None


def test_worst_layer_of_nothing():
    assert worst_layer({}) is None
    quiet = LayerHealth("x", (), None, None, 1.0, 0, 0, 0.0)
    loud = LayerHealth("y", (Badge("dead", "all dead"),), 1.0, None, 1.0, 0, 0, 2.0)
    assert worst_layer({"x": quiet}) is None
    assert worst_layer({"x": quiet, "y": loud}) == "y"


def test_model_is_left_bit_identical_and_no_grad_is_written(cnn, images, branches, x):
    for model, inputs in ((cnn, images), (branches, x)):
        for mode in (True, False):
            model.train(mode)
            before = model_snapshot(model)
            layer_health(model, inputs, target=1)
            assert_unchanged(model, before)
            assert all(p.grad is None for p in model.parameters())
    first = next(branches.parameters())
    first.grad = torch.ones_like(first)
    before = model_snapshot(branches)
    layer_health(branches, x)
    assert_unchanged(branches, before)


def test_bad_inputs_get_clear_errors_and_leave_no_hooks(branches, x):
    before = model_snapshot(branches)
    with pytest.raises(TypeError, match=r"inputs must be a tensor.*expects \[N, 6\]"):
        layer_health(branches, "six numbers")
    with pytest.raises(TypeError, match=r"got list"):
        layer_health(branches, [1.0, 2.0])
    with pytest.raises(InputShapeError, match=r"shape \[64, 5\].*expects \[N, 6\]"):
        layer_health(branches, torch.randn(64, 5))
    with pytest.raises(ValueError, match=r"valid targets are 0..3"):
        layer_health(branches, x, target=9)
    assert_unchanged(branches, before)


def test_as_dict_is_json_safe(branches, x):
    import json

    health = layer_health(branches, x)
    text = json.dumps({name: layer.as_dict() for name, layer in health.items()}, allow_nan=False)
    assert json.loads(text)["a.1"]["badges"][0]["kind"] == "dead"


def test_integer_token_inputs_take_gradients_at_the_layer_outputs():
    torch.manual_seed(0)
    embed, recurrent, head = nn.Embedding(10, 4), nn.GRU(4, 5, batch_first=True), nn.Linear(5, 3)

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.recurrent, self.head = embed, recurrent, head

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.head(self.recurrent(self.embed(tokens))[0][:, -1])

    tokens = torch.randint(0, 10, (8, 6))
    health = layer_health(Tokens(), tokens, target=1)
    vectors = embed(tokens)
    logits = head(recurrent(vectors)[0][:, -1])
    (grad,) = torch.autograd.grad(logits[:, 1].sum(), [vectors])
    assert health["embed"].grad_rms == pytest.approx(grad.square().mean().sqrt().item(), rel=1e-5)
    assert all(layer.badges == () for layer in health.values())
