"""Explorer: the tree, the view each layer kind opens, linked selections, badges, hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv

from ._support import FrontEnd, SmallCNN, assert_unchanged, hooked_output, model_snapshot


class SequenceNet(nn.Module):
    """Embedding -> LSTM -> self-attention -> classifier: one recurrent and one attention layer."""

    def __init__(self, vocabulary: int = 20, width: int = 16, n_classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.head = nn.Linear(width, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embed(ids))
        mixed, _ = self.attn(states, states, states)
        return self.head(mixed.mean(dim=1))


class Reuse(nn.Module):
    """A module shared by two containers, and one called twice in a forward."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(6, 6)
        self.left = nn.Sequential(shared, nn.ReLU())
        self.right = nn.Sequential(shared, nn.Tanh())
        self.twice = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.twice(self.twice(x))
        return self.head(self.left(x) + self.right(x))


@pytest.fixture
def digits():
    torch.manual_seed(0)
    model = mv.demo.digits_cnn()
    images, labels = mv.demo.load_digits("test")
    return model, images[:8], labels[:8]


def test_tree_lists_every_module_and_a_conv_layer_opens_feature_maps_and_filters(digits):
    model, images, labels = digits
    with mv.Explorer(model, images, labels=labels) as explorer:
        names = [row["name"] for row in explorer.core.tree]
        assert names == [name for name, _ in model.named_modules()]
        conv = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
        explorer.layer = conv
        kinds = [type(child).__name__ for child in explorer.detail.children]
        assert kinds == ["FeatureMaps", "Filters"]
        maps = explorer.detail.children[0]
        assert maps.layer == conv
        expected = hooked_output(model, images, conv)
        np.testing.assert_allclose(maps.current["channel"], expected[0, 0].numpy(), rtol=1e-5)
        assert explorer.core.strip_labels == [str(v) for v in labels.tolist()]
        assert explorer.core.strip_meta["shape"][0] == 8


def test_layer_distributions_match_numpy_histograms(digits):
    model, images, _ = digits
    conv = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    with mv.Explorer(model, images) as explorer:
        explorer.layer = conv
        weight = dict(model.named_modules())[conv].weight.detach().numpy().ravel()
        expected, _ = np.histogram(weight, bins=32, range=(weight.min(), weight.max()))
        np.testing.assert_array_equal(explorer.current["hist"][0], expected)
        rows = explorer.core.hist_meta["rows"]
        assert rows[0]["name"] == "weight" and rows[0]["count"] == weight.size
        activation = hooked_output(model, images, conv)[0].numpy().ravel()
        expected, _ = np.histogram(activation, bins=32, range=(activation.min(), activation.max()))
        np.testing.assert_array_equal(explorer.current["hist"][2], expected)


def test_sample_and_target_reach_every_open_view(digits):
    model, images, _ = digits
    conv = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    with mv.Explorer(model, images) as explorer:
        explorer.layer = conv
        explorer.sample = 3
        maps = explorer.views["feature_maps"]
        assert maps.sample == 3
        expected = hooked_output(model, images, conv)[3, maps.channel].numpy()
        np.testing.assert_allclose(maps.current["channel"], expected, rtol=1e-5)
        explorer.target = 4
        explorer.tab = "saliency"
        saliency = explorer.views["saliency"]
        assert [type(c).__name__ for c in explorer.detail.children] == ["Saliency"]
        assert saliency.target == 4 and saliency.sample == 3
        explorer.target = 6  # an open view follows later changes too
        assert saliency.target == 6
        assert (
            explorer.core.predictions[0]["probability"]
            >= explorer.core.predictions[1]["probability"]
        )


def test_new_inputs_rerun_the_open_views(digits):
    model, images, _ = digits
    conv = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    with mv.Explorer(model, images) as explorer:
        explorer.layer = conv
        others = mv.demo.load_digits("train")[0][:5]
        explorer.inputs = others
        assert explorer.core.n_samples == 5
        maps = explorer.views["feature_maps"]
        expected = hooked_output(model, others, conv)[0, maps.channel].numpy()
        np.testing.assert_allclose(maps.current["channel"], expected, rtol=1e-5)


def test_recurrent_and_attention_layers_open_their_views():
    torch.manual_seed(0)
    model = SequenceNet()
    ids = torch.randint(0, 20, (3, 7))
    tokens = [[f"t{int(i)}" for i in row] for row in ids]
    with mv.Explorer(model, ids, tokens=tokens) as explorer:
        assert explorer.core.saliency_available is False
        assert explorer.core.strip_text[0].startswith("t")
        explorer.layer = "lstm"
        assert [type(c).__name__ for c in explorer.detail.children] == ["HiddenStates"]
        states = explorer.detail.children[0]
        assert states.layer == "lstm"
        explorer.layer = "attn"
        assert [type(c).__name__ for c in explorer.detail.children] == ["Attention"]
        attention = explorer.detail.children[0]
        # The attention shown is the module's own average over heads... per head: compare head 0.
        embedded = model.embed(ids)
        states_ref, _ = model.lstm(embedded)
        _, weights = model.attn(
            states_ref, states_ref, states_ref, need_weights=True, average_attn_weights=False
        )
        np.testing.assert_allclose(
            attention.current["matrix"], weights[0, 0].detach().numpy(), atol=1e-6
        )
        explorer.sample = 2
        assert attention.sample == 2 and states.sample == 2


def test_shared_and_repeated_modules_are_marked():
    torch.manual_seed(0)
    model = Reuse()
    x = torch.randn(4, 6)
    with mv.Explorer(model, x) as explorer:
        rows = {row["name"]: row for row in explorer.core.tree}
        assert rows["left.0"]["shared_with"] == ["right.0"]
        assert rows["right.0"]["shared_with"] == ["left.0"]
        assert len(rows["twice"]["calls"]) == 2
        assert rows["head"]["shared_with"] == [] and len(rows["head"]["calls"]) == 1
        explorer.layer = "right.0"  # an alias name still opens its view
        assert explorer.error == ""
        # Each call of the module that runs twice has its own row and its own output.
        model.eval()
        with torch.no_grad():
            first = model.twice(x)
            second = model.twice(first)
        for name, expected in (("twice#0", first), ("twice#1", second)):
            explorer.layer = name
            maps = explorer.views["feature_maps"]
            assert maps.layer == name
            np.testing.assert_allclose(maps.maps[:, 0, 0].numpy(), expected.numpy(), rtol=1e-6)
            assert explorer.core.layer_info["call"] == int(name[-1])
        with pytest.raises(ValueError, match="unknown layer 'twice#2'"):
            explorer.layer = "twice#2"


def test_opens_on_the_worst_layer_and_badges_ride_in_the_tree():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    with torch.no_grad():
        model[2].bias.fill_(-100.0)  # the second ReLU never fires
    x = torch.randn(32, 8)
    with mv.Explorer(model, x) as explorer:
        rows = {row["name"]: row for row in explorer.core.tree}
        assert [b["kind"] for b in rows["3"]["badges"]] == ["dead"]
        assert rows["4"]["badges"] == []  # downstream of the dead layer, gradients are fine
        assert explorer.layer == "3"
        assert "dead" in explorer.core.layer_info["badges"][0]["kind"]


def test_browser_selections_are_validated_and_answered(digits):
    model, images, _ = digits
    with mv.Explorer(model, images) as explorer:
        front = FrontEnd(explorer.core)
        front.set(layer="no.such.layer")
        assert "unknown layer 'no.such.layer'" in explorer.error
        other = next(name for name, m in model.named_modules() if name and name != explorer.layer)
        front.set(layer=other)
        assert explorer.error == ""
        assert explorer.layer == other
        seq = explorer.core.seq
        front.set(sample=2)
        assert explorer.core.seq > seq and explorer.views["feature_maps"].sample == 2


def test_model_is_left_as_it_was(digits):
    model, images, _ = digits
    for train in (True, False):
        model.train(train)
        before = model_snapshot(model)
        explorer = mv.Explorer(model, images)
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):
                explorer.layer = name
        explorer.target = 2
        explorer.tab = "saliency"
        explorer.close()
        assert_unchanged(model, before)


def test_bad_arguments_say_what_is_valid(digits):
    model, images, labels = digits
    with pytest.raises(ValueError, match="one label per input"):
        mv.Explorer(model, images, labels=labels[:3])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        mv.Explorer("model", images)
    cnn = SmallCNN()
    with pytest.raises(Exception, match="expects|channels|shape"):
        mv.Explorer(cnn, torch.randn(2, 3, 8, 8))


def test_a_transformers_model_opens_its_attention_view():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, attn_implementation="eager",
    )  # fmt: skip
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 50, (2, 7))
    with mv.Explorer(model, ids) as explorer:
        assert explorer.core.n_classes == 0 and explorer.core.predictions == []
        explorer.layer = "encoder.layer.1.attention.self"
        (view,) = explorer.detail.children
        assert type(view).__name__ == "Attention" and view.layer == 1
        with torch.no_grad():
            expected = model(ids, output_attentions=True).attentions[1][0, view.head]
        np.testing.assert_allclose(view.current["matrix"], expected.numpy(), atol=1e-6)
        explorer.layer = "embeddings.word_embeddings"
        assert [type(c).__name__ for c in explorer.detail.children] == ["FeatureMaps"]
