"""FeatureMaps driven as the browser drives it: trait changes in, binary payloads out."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import wire

from ._support import FrontEnd, SmallCNN, assert_unchanged, hooked_output, model_snapshot


def test_opens_on_the_first_conv_layer_and_shows_its_channels(cnn, images):
    fm = mv.FeatureMaps(cnn, images)
    assert fm.layer == "features.0"
    names = [option["name"] for option in fm.layer_options]
    assert names.index("features.5") < names.index("classifier.2")  # maps before vectors
    assert fm.n_channels == 6 and fm.n_samples == 4
    expected = hooked_output(cnn, images, "features.0")
    np.testing.assert_allclose(fm.current["channel"], expected[0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(fm.current["grid"], expected[0].numpy(), rtol=1e-6)
    decoded = wire.decode(fm.channel_data, fm.channel_meta)
    step = (fm.channel_meta["vmax"] - fm.channel_meta["vmin"]) / 254
    assert np.abs(decoded - expected[0, 0].numpy()).max() <= step / 2 + 1e-6
    np.testing.assert_allclose(fm.current["input"], images[0, 0].numpy())


def test_channel_change_from_the_browser_is_answered_from_the_cache(cnn, images, monkeypatch):
    fm = mv.FeatureMaps(cnn, images, layer="features.4")
    front = FrontEnd(fm)
    runs = []
    original_forward = cnn.forward
    monkeypatch.setattr(cnn, "forward", lambda x: runs.append(1) or original_forward(x))
    front.set(channel=5)
    assert runs == []  # no forward for a channel change
    expected = hooked_output(cnn, images, "features.4")
    np.testing.assert_allclose(fm.current["channel"], expected[0, 5].numpy(), rtol=1e-6)
    updates = front.updates()
    assert len(front.messages) == len(updates) == 1  # one comm message for one change, no echo
    assert set(updates[0]) == {"channel_data", "channel_meta"}
    assert updates[0]["channel_meta"]["channel"] == 5
    buffers = front.messages[-1][1]
    assert (
        len(buffers) == 1 and len(buffers[0]) == 4 * 4
    )  # one 4x4 channel, as bytes ride as a binary buffer


def test_layer_change_reruns_with_one_hook(cnn, images):
    fm = mv.FeatureMaps(cnn, images)
    front = FrontEnd(fm)
    seen_hooks = []
    original = cnn.features[4].forward

    def spy(x):
        seen_hooks.append(sum(len(m._forward_hooks) for m in cnn.modules()))
        return original(x)

    cnn.features[4].forward = spy
    front.set(layer="features.4")
    del cnn.features[4].forward
    assert seen_hooks == [1]
    assert fm.n_channels == 8
    expected = hooked_output(cnn, images, "features.4")
    np.testing.assert_allclose(fm.current["grid"], expected[0].numpy(), rtol=1e-6)
    assert len(front.updates()) == 1


def test_sample_selects_the_batch_element(cnn, images):
    fm = mv.FeatureMaps(cnn, images, layer="features.3")
    FrontEnd(fm).set(sample=2, channel=1)
    expected = hooked_output(cnn, images, "features.3")
    np.testing.assert_allclose(fm.current["channel"], expected[2, 1].numpy(), rtol=1e-6)
    np.testing.assert_allclose(fm.current["input"], images[2, 0].numpy())


def test_single_image_without_batch_axis(cnn, images):
    fm = mv.FeatureMaps(cnn, images[0])
    assert fm.n_samples == 1
    np.testing.assert_allclose(
        fm.current["channel"], hooked_output(cnn, images[:1], "features.0")[0, 0].numpy(), rtol=1e-6
    )


def test_linear_layer_is_one_strip(cnn, images):
    fm = mv.FeatureMaps(cnn, images, layer="classifier.2")
    assert fm.n_channels == 1 and fm.channel_meta["shape"] == [1, 5]
    np.testing.assert_allclose(
        fm.current["channel"][0], hooked_output(cnn, images, "classifier.2")[0].numpy(), rtol=1e-6
    )


def test_one_dimensional_convolution_on_signals():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28, 3))
    signals = torch.randn(3, 2, 32)
    fm = mv.FeatureMaps(model, signals, layer="0")
    assert fm.channel_meta["shape"] == [1, 28] and fm.grid_meta["shape"] == [4, 1, 28]
    np.testing.assert_allclose(
        fm.current["channel"][0], hooked_output(model, signals, "0")[0, 0].numpy(), rtol=1e-6
    )
    assert fm.input_meta["shape"] == [2, 32] and not fm.input_meta["rgb"]


def test_rgb_input_is_sent_as_colour():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    photos = torch.rand(2, 3, 10, 12)
    fm = mv.FeatureMaps(model, photos)
    assert fm.input_meta["rgb"] and fm.input_meta["shape"] == [3, 10, 12]
    assert fm.input_meta["scale"] == "linear"


def test_nan_and_inf_activations_are_drawn_and_counted(cnn, images):
    poisoned = images.clone()
    poisoned[0, 0, 0, 0] = float("nan")
    poisoned[0, 0, 4, 4] = float("inf")
    fm = mv.FeatureMaps(cnn, poisoned)
    meta = fm.channel_meta
    assert meta["nan_count"] > 0
    assert set(fm.channel_meta) >= {"posinf_count", "neginf_count"}
    codes = np.frombuffer(fm.channel_data, dtype=np.uint8)
    assert (codes == wire.NONFINITE_CODE).sum() == (
        meta["nan_count"] + meta["posinf_count"] + meta["neginf_count"]
    )
    assert np.isfinite([meta["vmin"], meta["vmax"]]).all()
    FrontEnd(fm).set(layer="classifier.2")  # NaN flows everywhere downstream: still no crash
    assert fm.channel_meta["nan_count"] == 5


def test_big_layers_are_downsampled_to_the_budget():
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1))
    fm = mv.FeatureMaps(model, torch.randn(1, 1, 64, 64), byte_budget=32 * 32 * 32)
    assert fm.grid_meta["downsampled"] and len(fm.grid_data) <= 32 * 32 * 32
    assert fm.grid_meta["note"]
    assert fm.current["grid"].shape == (32, 32, 32)
    assert not fm.channel_meta["downsampled"]  # one channel fits


def test_exact_values_on_request(cnn, images):
    fm = mv.FeatureMaps(cnn, images, encoding="float32")
    FrontEnd(fm).set(sample=1, channel=3)
    expected = hooked_output(cnn, images, "features.0")[1, 3].numpy()
    np.testing.assert_array_equal(wire.decode(fm.channel_data, fm.channel_meta), expected)


def test_bad_selections_raise_with_valid_values(cnn, images):
    fm = mv.FeatureMaps(cnn, images)
    with pytest.raises(
        ValueError, match="unknown layer 'nope'; valid layer names are: .*features.0"
    ):
        fm.layer = "nope"
    with pytest.raises(ValueError, match=r"valid values are 0..5"):
        fm.channel = 6
    with pytest.raises(ValueError, match=r"valid values are 0..3"):
        fm.sample = 4
    assert fm.layer == "features.0" and fm.channel == 0  # nothing lost
    with pytest.raises(ValueError, match="unknown layer"):
        mv.FeatureMaps(cnn, images, layer="features.42")
    with pytest.raises(TypeError, match="unexpected keyword argument.*colour"):
        mv.FeatureMaps(cnn, images, colour="red")


def test_wrong_input_shape_names_the_expected_one(cnn):
    with pytest.raises(ValueError, match=r"expects \[N, 1, H, W\] \(or \[1, H, W\]\)"):
        mv.FeatureMaps(cnn, torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expects \[N, 1, H, W\]"):
        mv.FeatureMaps(cnn, torch.randn(8))


def test_tuple_output_layer_is_refused_clearly():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0])

    fm = mv.FeatureMaps(Tagger(), torch.randn(2, 5, 3))
    assert "lstm" not in [option["name"] for option in fm.layer_options]
    with pytest.raises(ValueError, match=r"'lstm' \(LSTM\) returns a tuple"):
        fm.layer = "lstm"


def test_model_untouched_after_close_and_twenty_recreations(cnn, images):
    cnn.train()
    before = model_snapshot(cnn)
    for _ in range(20):
        fm = mv.FeatureMaps(cnn, images)
        front = FrontEnd(fm)
        front.set(layer="features.2")
        front.set(channel=3)
        fm.close()
    assert_unchanged(cnn, before)
    with mv.FeatureMaps(cnn, images) as fm:
        FrontEnd(fm).set(layer="classifier.2")
    assert_unchanged(cnn, before)
    fm.close()  # a second close is harmless


def test_closed_widget_is_collectable_and_releases_the_model(images):
    cnn = SmallCNN()  # not the fixture: pytest keeps fixture values alive
    fm = mv.FeatureMaps(cnn, images)
    widget_ref = weakref.ref(fm)
    model_ref = weakref.ref(cnn)
    fm.close()
    del fm, cnn
    gc.collect()
    assert widget_ref() is None
    assert model_ref() is None


def test_mimebundle_for_jupyter_and_plain_text(cnn, images):
    bundle = mv.FeatureMaps(cnn, images)._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data and "text/plain" in data


def test_a_bad_value_from_the_browser_is_rolled_back(cnn, images):
    fm = mv.FeatureMaps(cnn, images)
    front = FrontEnd(fm)
    front.set(channel=9)  # ipywidgets logs the refusal; the kernel keeps running
    assert fm.channel == 0  # rolled back, nothing half-applied
    assert "valid values are 0..5" in fm.error  # and the view is told
    assert any("error" in update for update in front.updates())
    front.set(channel=2)
    assert fm.channel_meta["channel"] == 2 and fm.error == ""
