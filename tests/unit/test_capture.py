"""capture() and layers() against computations written out by hand, and model hygiene."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelviz_widgets as mv

from ._support import SmallCNN, assert_unchanged, model_snapshot


def manual_forward(model: SmallCNN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same network evaluated layer by layer in eval mode, keeping every intermediate."""
    f = model.features
    out: dict[str, torch.Tensor] = {}
    out["features.0"] = f[0](x)
    bn = f[1]
    out["features.1"] = (out["features.0"] - bn.running_mean[None, :, None, None]) / torch.sqrt(
        bn.running_var[None, :, None, None] + bn.eps
    ) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    out["features.2"] = torch.relu(out["features.1"])
    out["features.3"] = nn.functional.max_pool2d(out["features.2"], 2)
    out["features.4"] = f[4](out["features.3"])
    out["features.5"] = torch.relu(out["features.4"])
    out["classifier.2"] = model.classifier[2](out["features.5"].flatten(1))
    return out


def test_activations_equal_a_manual_forward(cnn, images):
    with torch.no_grad():
        expected = manual_forward(cnn, images)
    result = mv.capture(cnn, images, list(expected))
    for name, tensor in expected.items():
        torch.testing.assert_close(result.activations[name], tensor, rtol=1e-5, atol=1e-5)
        assert result.activations[name].grad_fn is None
    torch.testing.assert_close(result.output, expected["classifier.2"], rtol=1e-5, atol=1e-5)


def test_output_overwritten_by_inplace_relu_is_kept_as_it_was(cnn, images):
    # ReLU(inplace=True) overwrites features.1's output: the capture must hold pre-ReLU values.
    result = mv.capture(cnn, images, ["features.1", "features.2"])
    assert (result.activations["features.1"] < 0).any()
    assert (result.activations["features.2"] >= 0).all()


@pytest.mark.parametrize("target", [3, [0, 1, 2, 3], None])
def test_gradients_equal_autograd_with_retain_grad(cnn, images, target):
    names = ["features.0", "features.1", "features.4", "classifier.2"]
    result = mv.capture(cnn, images, names, grads=True, target=target)

    cnn.eval()
    x = images.clone().requires_grad_(True)
    f = cnn.features
    a0 = f[0](x)
    a1 = f[1](a0)
    a1_saved = a1.clone()  # what the in-place ReLU sees; its gradient is the gradient of a1
    a1_saved.retain_grad()
    a4 = f[4](f[3](torch.relu(a1_saved)))
    logits = cnn.classifier(torch.relu(a4))
    for tensor in (a0, a4, logits):
        tensor.retain_grad()
    index = logits.argmax(1) if target is None else torch.as_tensor(target).expand(len(images))
    score = logits.gather(1, index[:, None]).sum()
    score.backward()
    expected = {"features.0": a0, "features.1": a1_saved, "features.4": a4, "classifier.2": logits}
    for name, tensor in expected.items():
        torch.testing.assert_close(result.gradients[name], tensor.grad, rtol=1e-5, atol=1e-6)


def test_callable_target(cnn, images):
    result = mv.capture(
        cnn, images, ["features.4"], grads=True, target=lambda out: out[:, 2].mean()
    )
    reference = mv.capture(cnn, images, ["features.4"], grads=True, target=2)
    torch.testing.assert_close(
        result.gradients["features.4"], reference.gradients["features.4"] / len(images)
    )


def test_model_is_left_bit_identical_in_train_and_eval_mode(cnn, images):
    for mode in (True, False):
        cnn.train(mode)
        cnn.features[1].eval()  # a mixed state must come back exactly as it was
        before = model_snapshot(cnn)
        mv.capture(cnn, images, ["features.1", "classifier.2"], grads=True, target=1)
        mv.layers(cnn, images)
        assert_unchanged(cnn, before)


def test_visual_forward_runs_in_eval_mode(cnn, images):
    cnn.train()
    first = mv.capture(cnn, images, ["classifier.2"]).activations["classifier.2"]
    second = mv.capture(cnn, images, ["classifier.2"]).activations["classifier.2"]
    assert torch.equal(first, second)  # dropout off, BatchNorm on running statistics


def test_hooks_removed_when_forward_raises(images):
    class Failing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.head = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.conv(x)
            raise RuntimeError("boom inside forward")

    model = Failing()
    before = model_snapshot(model)
    with pytest.raises(ValueError, match="boom inside forward"):
        mv.capture(model, images, ["conv", "head"], grads=True)
    assert_unchanged(model, before)


def test_hooks_removed_when_target_is_invalid(cnn, images):
    before = model_snapshot(cnn)
    with pytest.raises(ValueError, match="valid targets are 0..4"):
        mv.capture(cnn, images, ["features.0"], grads=True, target=7)
    assert_unchanged(cnn, before)


def test_unknown_layer_lists_valid_names(cnn, images):
    with pytest.raises(ValueError, match="unknown layer 'features.9'") as info:
        mv.capture(cnn, images, "features.9")
    assert "features.0" in str(info.value) and "classifier.2" in str(info.value)


def test_wrong_input_shape_names_the_expected_shape(cnn):
    with pytest.raises(ValueError, match=r"expects \[N, 1, H, W\]"):
        mv.capture(cnn, torch.randn(2, 3, 8, 8), "features.0")


def test_layer_with_tuple_output_gets_a_clear_error():
    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lstm(x)[0]

    with pytest.raises(ValueError, match=r"'lstm' \(LSTM\) returns a tuple, not a tensor"):
        mv.capture(Recurrent(), torch.randn(2, 5, 3), "lstm")


def test_unused_layer_is_reported(cnn, images):
    cnn.spare = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="'spare'.*did not run"):
        mv.capture(cnn, images, ["features.0", "spare"])


def test_non_module_model_is_rejected(images):
    with pytest.raises(TypeError, match=r"torch.nn.Module"):
        mv.capture(lambda x: x, images, "0")


def test_layers_kinds_shapes_and_parameter_counts(cnn, images):
    infos = {info.name: info for info in mv.layers(cnn, images[:2])}
    assert infos["features"].kind == "container"
    assert infos["features.0"].kind == "conv"
    assert infos["features.1"].kind == "norm"
    assert infos["features.2"].kind == "activation"
    assert infos["features.3"].kind == "pool"
    assert infos["classifier.1"].kind == "dropout"
    assert infos["classifier.2"].kind == "linear"
    assert infos["features.0"].output_shape == (2, 6, 8, 8)
    assert infos["features.3"].output_shape == (2, 6, 4, 4)
    assert infos["classifier.2"].output_shape == (2, 5)
    assert infos["features.0"].n_params == 6 * 1 * 9 + 6
    assert infos["classifier.2"].n_params == 128 * 5 + 5
    assert all(info.output_shape is None for info in mv.layers(cnn))


def test_layer_kinds_of_other_families():
    model = nn.ModuleDict(
        {
            "embed": nn.Embedding(10, 4),
            "rnn": nn.GRU(4, 4),
            "attn": nn.MultiheadAttention(4, 2),
            "norm": nn.LayerNorm(4),
            "act": nn.GELU(),
        }
    )
    kinds = {info.name: info.kind for info in mv.layers(model)}
    assert kinds == {
        "embed": "embedding",
        "rnn": "recurrent",
        "attn": "attention",
        "attn.out_proj": "linear",
        "norm": "norm",
        "act": "activation",
    }


def test_module_called_twice_keeps_the_last_call():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Linear(3, 3, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale(self.scale(x))

    model = Shared()
    x = torch.randn(2, 3)
    result = mv.capture(model, x, "scale", grads=True, target=0)
    assert result.calls["scale"] == 2
    with torch.no_grad():
        torch.testing.assert_close(result.activations["scale"], model.scale(model.scale(x)))
    expected = torch.zeros(2, 3)
    expected[:, 0] = 1
    torch.testing.assert_close(result.gradients["scale"], expected)


def test_visual_forwards_on_one_model_are_serialized_across_threads(cnn, images):
    import threading

    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    class Gate(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if threading.current_thread().name == "first":
                inside.set()
                release.wait(5)
            order.append(threading.current_thread().name)
            return x

    cnn.features.insert(0, Gate())
    first = threading.Thread(
        target=lambda: mv.capture(cnn, images, "features.1"), name="first", daemon=True
    )
    first.start()
    assert inside.wait(5)
    second = threading.Thread(
        target=lambda: mv.capture(cnn, images, "features.1"), name="second", daemon=True
    )
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waits for the model while the first capture holds it
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["first", "second"]
    assert all(not module._forward_hooks for module in cnn.modules())
