"""model_tree() and per-call capture ("name#k") against forwards written out by hand."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.capture import ModuleCall, TreeNode, model_tree

from ._support import assert_unchanged, model_snapshot


class Block(nn.Module):
    """A custom module holding a Sequential and a module it shares with another block."""

    def __init__(self, shared: nn.Linear) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.shared = shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.body(x))


class Nested(nn.Module):
    """Blocks in a ModuleList sharing one Linear, a Linear applied twice, and an own parameter."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([Block(shared), Block(shared)])
        self.twice = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        x = self.twice(torch.relu(self.twice(x)))
        return self.head(x) * self.scale


def hand_forward(model: Nested, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every intermediate of Nested's forward, layer by layer."""
    out: dict[str, torch.Tensor] = {}
    b0, b1 = (cast(Block, block) for block in model.blocks)
    out["b0.linear"] = b0.body[0](x)
    out["b0.tanh"] = torch.tanh(out["b0.linear"])
    out["s0"] = b0.shared(out["b0.tanh"])
    out["b1.linear"] = b1.body[0](out["s0"])
    out["b1.tanh"] = torch.tanh(out["b1.linear"])
    out["s1"] = b1.shared(out["b1.tanh"])
    out["w0"] = model.twice(out["s1"])
    out["w1"] = model.twice(torch.relu(out["w0"]))
    out["head"] = model.head(out["w1"])
    out["output"] = out["head"] * model.scale
    return out


@pytest.fixture
def nested() -> Nested:
    torch.manual_seed(0)
    return Nested()


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(5, 4)


def test_names_parents_children_kinds_and_depths(nested, x):
    nodes = {node.name: node for node in model_tree(nested, x)}
    expected_names = [name for name, _ in nested.named_modules(remove_duplicate=False)]
    assert [node.name for node in model_tree(nested, x)] == expected_names
    assert expected_names[0] == ""
    assert "blocks.1.shared" in nodes and "blocks.1.body.0" in nodes
    assert nodes[""].parent is None and nodes[""].depth == 0
    assert nodes[""].children == ("blocks", "twice", "head")
    assert nodes["blocks"].parent == "" and nodes["blocks"].children == ("blocks.0", "blocks.1")
    assert nodes["blocks.0"].children == ("blocks.0.body", "blocks.0.shared")
    assert nodes["blocks.1.body"].children == ("blocks.1.body.0", "blocks.1.body.1")
    assert nodes["blocks.1.body.1"].parent == "blocks.1.body"
    assert nodes["blocks.1.body.1"].depth == 4
    assert nodes["head"].children == ()
    kinds = {name: node.kind for name, node in nodes.items()}
    assert kinds[""] == kinds["blocks"] == kinds["blocks.0"] == kinds["blocks.0.body"]
    assert kinds["blocks"] == "container"
    assert kinds["blocks.0.body.0"] == kinds["twice"] == "linear"
    assert kinds["blocks.0.body.1"] == "activation"
    assert nodes["blocks.0"].module_type == "Block"
    assert nodes["blocks.1.body.1"].module_type == "Tanh"


def test_shared_module_is_listed_under_both_parents(nested, x):
    nodes = {node.name: node for node in model_tree(nested, x)}
    assert nodes["blocks.0.shared"].shared_with == ("blocks.1.shared",)
    assert nodes["blocks.1.shared"].shared_with == ("blocks.0.shared",)
    assert nodes["blocks.0.shared"].calls == nodes["blocks.1.shared"].calls
    assert len(nodes["blocks.0.shared"].calls) == 2
    assert all(
        node.shared_with == () for name, node in nodes.items() if not name.endswith("shared")
    )


def test_parameter_counts_count_each_parameter_once(nested, x):
    nodes = {node.name: node for node in model_tree(nested, x)}
    linear = 4 * 4 + 4
    # Two block bodies, the shared Linear once, twice, the head (4*3 + 3) and the scale.
    assert nodes[""].n_params == 2 * linear + linear + linear + 15 + 3
    assert nodes[""].own_params == 3
    assert nodes["blocks"].n_params == 3 * linear and nodes["blocks"].own_params == 0
    assert nodes["blocks.0"].n_params == 2 * linear
    assert nodes["blocks.1.shared"].n_params == nodes["blocks.1.shared"].own_params == linear
    assert nodes["blocks.0.body.1"].n_params == 0


def test_each_call_has_its_own_shape_magnitude_and_order(nested, x):
    with torch.no_grad():
        hand = hand_forward(nested, x)
    nodes = {node.name: node for node in model_tree(nested, x)}

    def check(call: ModuleCall, tensor: torch.Tensor) -> None:
        assert call.output_shape == tuple(tensor.shape)
        assert call.magnitude == pytest.approx(tensor.abs().mean().item(), rel=1e-6)
        assert call.nonfinite == 0

    shared = nodes["blocks.0.shared"].calls
    check(shared[0], hand["s0"])
    check(shared[1], hand["s1"])
    twice = nodes["twice"].calls
    check(twice[0], hand["w0"])
    check(twice[1], hand["w1"])
    check(nodes["blocks.1.body.1"].calls[0], hand["b1.tanh"])
    check(nodes[""].calls[0], hand["output"])
    assert nodes["blocks"].calls == ()  # a ModuleList is never called
    # Calls are numbered in the order they start: the root, block 0 and its parts, block 1...
    order = {
        "": [0],
        "blocks.0": [1],
        "blocks.0.body": [2],
        "blocks.0.body.0": [3],
        "blocks.0.body.1": [4],
        "blocks.0.shared": [5, 10],
        "blocks.1": [6],
        "blocks.1.body": [7],
        "blocks.1.body.0": [8],
        "blocks.1.body.1": [9],
        "twice": [11, 12],
        "head": [13],
    }
    assert {name: [call.index for call in nodes[name].calls] for name in order} == order


def test_nonfinite_values_are_counted_and_left_out_of_the_magnitude(nested):
    torch.manual_seed(2)
    x = torch.randn(3, 4)
    x[0, 1] = float("inf")
    x[2, 3] = float("nan")
    with torch.no_grad():
        hand = hand_forward(nested, x)
    nodes = {node.name: node for node in model_tree(nested, x)}
    call = nodes["blocks.0.body.0"].calls[0]
    tensor = hand["b0.linear"]
    finite = torch.isfinite(tensor)
    assert call.nonfinite == int((~finite).sum()) > 0
    assert call.magnitude == pytest.approx(tensor[finite].abs().mean().item(), rel=1e-6)
    # The tanh maps the infinities to ±1; the NaN row stays NaN through every later layer.
    later = hand["s1"]
    finite = torch.isfinite(later)
    assert finite.any() and not finite.all()
    assert nodes["blocks.1.shared"].calls[1].nonfinite == int((~finite).sum())
    assert nodes["blocks.1.shared"].calls[1].magnitude == pytest.approx(
        later[finite].abs().mean().item(), rel=1e-6
    )


def test_magnitude_is_nan_and_json_null_when_nothing_is_finite(nested):
    x = torch.full((2, 4), float("nan"))
    nodes = model_tree(nested, x)
    head = next(node for node in nodes if node.name == "head")
    assert math.isnan(head.calls[0].magnitude) and head.calls[0].nonfinite == 6
    text = json.dumps([node.as_dict() for node in nodes], allow_nan=False)
    record = next(item for item in json.loads(text) if item["name"] == "head")
    assert record["calls"][0] == {"index": 13, "output_shape": [2, 3], "magnitude": None,
                                  "nonfinite": 6}  # fmt: skip


def test_without_inputs_there_is_no_forward_and_no_calls(nested, x):
    bare = model_tree(nested)
    full = model_tree(nested, x)
    assert all(node.calls == () for node in bare)
    assert [node.name for node in bare] == [node.name for node in full]
    assert [node.n_params for node in bare] == [node.n_params for node in full]
    assert isinstance(bare[0], TreeNode)


def test_magnitude_is_taken_before_an_inplace_relu_overwrites_the_output(cnn, images):
    nodes = {node.name: node for node in model_tree(cnn, images)}
    cnn.eval()
    with torch.no_grad():
        normed = cnn.features[1](cnn.features[0](images))
    assert (normed < 0).any()
    assert nodes["features.1"].calls[0].magnitude == pytest.approx(
        normed.abs().mean().item(),
        rel=1e-5,  # a float32 sum: a magnitude bar's precision
    )


def test_model_is_left_bit_identical_in_train_and_eval_mode(cnn, images):
    for mode in (True, False):
        cnn.train(mode)
        cnn.features[1].eval()
        before = model_snapshot(cnn)
        model_tree(cnn, images)
        model_tree(cnn)
        assert_unchanged(cnn, before)


def test_hooks_removed_and_input_named_when_the_forward_fails(cnn):
    before = model_snapshot(cnn)
    with pytest.raises(ValueError, match=r"expects \[N, 1, H, W\]"):
        model_tree(cnn, torch.randn(2, 3, 8, 8))
    assert_unchanged(cnn, before)


def test_capture_addresses_each_call_and_its_gradient(nested, x):
    names = ["twice#0", "twice#1", "twice", "blocks.1.shared#0", "blocks.0.shared#1"]
    result = mv.capture(nested, x, names, grads=True, target=2)
    leaf = x.clone().requires_grad_(True)
    hand = hand_forward(nested, leaf)
    score = hand["output"][:, 2].sum()
    grads = torch.autograd.grad(score, [hand["w0"], hand["w1"], hand["s0"], hand["s1"]])
    expected = {
        "twice#0": (hand["w0"], grads[0]),
        "twice#1": (hand["w1"], grads[1]),
        "twice": (hand["w1"], grads[1]),
        "blocks.1.shared#0": (hand["s0"], grads[2]),
        "blocks.0.shared#1": (hand["s1"], grads[3]),
    }
    for name, (activation, gradient) in expected.items():
        torch.testing.assert_close(result.activations[name], activation.detach())
        torch.testing.assert_close(result.gradients[name], gradient)
    assert not torch.allclose(result.gradients["twice#0"], result.gradients["twice#1"])
    assert result.calls["twice#0"] == 2
    without = mv.capture(nested, x, "twice#0")
    torch.testing.assert_close(without.activations["twice#0"], hand["w0"].detach())


def test_unknown_call_index_says_how_many_calls_there_were(nested, x):
    before = model_snapshot(nested)
    with pytest.raises(ValueError, match=r"'twice' ran 2 times.*twice#0, twice#1"):
        mv.capture(nested, x, ["twice#2"])
    with pytest.raises(ValueError, match=r"'head' ran once"):
        mv.capture(nested, x, "head#1", grads=True)
    with pytest.raises(ValueError, match=r"unknown layer 'nowhere'"):
        mv.capture(nested, x, "nowhere#0")
    assert_unchanged(nested, before)


def test_a_module_name_holding_a_hash_still_resolves():
    model = nn.ModuleDict({"a#1": nn.Linear(2, 2)})
    model.forward = lambda x: model["a#1"](x)
    x = torch.randn(3, 2)
    result = mv.capture(model, x, "a#1")
    with torch.no_grad():
        torch.testing.assert_close(result.activations["a#1"], model["a#1"](x))


def resnet50() -> nn.Module:
    """The ResNet-50 layout the Explorer benchmark uses (benchmarks/common.py), random weights."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "common.py"
    spec = importlib.util.spec_from_file_location("benchmarks_common", path)
    assert spec is not None and spec.loader is not None
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common.ResNet50()


def test_resnet50_tree():
    torch.manual_seed(0)
    model = resnet50()
    x = torch.randn(1, 3, 64, 64)
    nodes = {node.name: node for node in model_tree(model, x)}
    assert nodes[""].n_params == sum(p.numel() for p in model.parameters()) == 25_557_032
    assert len(nodes) == len(list(model.named_modules()))
    relu = nodes["layer3.2.relu"]
    assert [call.output_shape for call in relu.calls] == [
        (1, 256, 4, 4),
        (1, 256, 4, 4),
        (1, 1024, 4, 4),
    ]
    assert nodes["fc"].calls[0].output_shape == (1, 1000)
    indices = sorted(call.index for node in nodes.values() for call in node.calls)
    assert indices == list(range(len(indices)))
