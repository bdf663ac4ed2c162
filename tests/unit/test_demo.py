"""The bundled demo: shipped weights, reproducible training, offline loaders, the photo CNN."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_load_digits
from sklearn.datasets import load_sample_images

from modelviz_widgets import demo
from modelviz_widgets.demo import data as demo_data
from modelviz_widgets.demo import train as demo_train
from modelviz_widgets.demo.models import DIGITS_WEIGHTS

DIGITS_LAYER_NAMES = [
    "features",
    "features.conv1",
    "features.relu1",
    "features.conv2",
    "features.relu2",
    "features.pool",
    "classifier",
    "classifier.flatten",
    "classifier.fc1",
    "classifier.relu",
    "classifier.fc2",
]


def held_out_accuracy(model: torch.nn.Module) -> float:
    """Accuracy on the held-out digits, computed here rather than with demo.evaluate_accuracy."""
    images, labels = demo.load_digits("test")
    with torch.no_grad():
        predictions = model(images).argmax(dim=1)
    return (predictions == labels).sum().item() / len(labels)


def state_dicts_equal(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any socket use fail loudly, and empty the loaders' caches so they really load."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for cached in (demo_data._digits_arrays, demo_data._split_indices, demo_data._photo_tensor):
        cached.cache_clear()


# --- shipped weights ------------------------------------------------------------------------------


def test_shipped_weights_file_is_inside_the_package_and_under_1_mb() -> None:
    assert DIGITS_WEIGHTS.parent == Path(demo.__file__).parent
    assert DIGITS_WEIGHTS.is_file()
    assert DIGITS_WEIGHTS.stat().st_size < 1_000_000


def test_shipped_weights_reach_95_percent_on_the_held_out_split() -> None:
    model = demo.digits_cnn()
    assert held_out_accuracy(model) > 0.95


def test_digits_cnn_loads_exactly_the_shipped_state_in_eval_mode() -> None:
    model = demo.digits_cnn()
    shipped = torch.load(DIGITS_WEIGHTS, map_location="cpu", weights_only=True)
    assert isinstance(model, demo.DigitsCNN)
    assert not any(module.training for module in model.modules())
    assert model.state_dict().keys() == shipped.keys()
    assert all(torch.equal(model.state_dict()[key], shipped[key]) for key in shipped)


def test_digits_cnn_without_weights_is_untrained() -> None:
    torch.manual_seed(0)
    model = demo.digits_cnn(pretrained=False)
    assert not model.training
    assert held_out_accuracy(model) < 0.5


def test_digits_cnn_layer_names_and_shapes() -> None:
    model = demo.digits_cnn()
    assert [name for name, _ in model.named_modules()][1:] == DIGITS_LAYER_NAMES
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(
            lambda module, args, output, name=name: shapes.__setitem__(name, tuple(output.shape))
        )
        for name, module in model.named_modules()
        if name
    ]
    try:
        logits = model(torch.zeros(2, 1, 8, 8))
    finally:
        for hook in hooks:
            hook.remove()
    assert logits.shape == (2, 10)
    assert shapes["features.conv1"] == (2, 8, 8, 8)
    assert shapes["features.conv2"] == (2, 16, 8, 8)
    assert shapes["features.pool"] == (2, 16, 4, 4)
    assert shapes["classifier.fc1"] == (2, 32)


# --- training -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_twice() -> tuple[tuple[torch.nn.Module, float], tuple[torch.nn.Module, float]]:
    return demo.train_digits_cnn(seed=0), demo.train_digits_cnn(seed=0)


def test_training_from_scratch_reaches_95_percent(trained_twice) -> None:
    (model, accuracy), _ = trained_twice
    assert accuracy > 0.95
    assert accuracy == pytest.approx(held_out_accuracy(model), abs=1e-6)
    assert not model.training


def test_training_with_the_same_seed_is_bit_identical(trained_twice) -> None:
    (first, first_accuracy), (second, second_accuracy) = trained_twice
    assert first is not second
    assert first_accuracy == second_accuracy
    assert state_dicts_equal(first, second)


def test_training_with_another_seed_differs() -> None:
    first, _ = demo.train_digits_cnn(epochs=1, seed=0)
    second, _ = demo.train_digits_cnn(epochs=1, seed=1)
    assert not state_dicts_equal(first, second)


def test_training_leaves_the_callers_torch_settings_alone() -> None:
    torch.manual_seed(1234)
    rng_before = torch.random.get_rng_state()
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    demo.train_digits_cnn(epochs=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before


def test_training_calls_on_step_once_per_batch_and_trains_a_given_model() -> None:
    steps: list[tuple[int, float]] = []
    given = demo.DigitsCNN()
    before = {key: value.clone() for key, value in given.state_dict().items()}
    model, _ = demo.train_digits_cnn(
        epochs=2, batch_size=100, model=given, on_step=lambda step, loss: steps.append((step, loss))
    )
    n_train = len(demo.load_digits("train")[1])
    assert model is given
    assert [step for step, _ in steps] == list(range(2 * -(-n_train // 100)))
    assert all(isinstance(loss, float) and np.isfinite(loss) for _, loss in steps)
    assert any(not torch.equal(before[key], value) for key, value in given.state_dict().items())


def test_training_is_quiet_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    demo.train_digits_cnn(epochs=1)
    assert capsys.readouterr().out == ""
    demo.train_digits_cnn(epochs=2, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "accuracy" in lines[-1]


def test_training_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="epochs"):
        demo.train_digits_cnn(epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        demo.train_digits_cnn(batch_size=0)


def test_train_script_writes_weights_that_digits_cnn_can_load(tmp_path: Path) -> None:
    output = tmp_path / "weights.pt"
    assert demo_train.main(["--epochs", "6", "--output", str(output), "--quiet"]) == 0
    model = demo.DigitsCNN()
    model.load_state_dict(torch.load(output, weights_only=True))
    assert held_out_accuracy(model.eval()) > 0.95


def test_train_script_refuses_to_write_a_poor_model(tmp_path: Path) -> None:
    output = tmp_path / "weights.pt"
    assert demo_train.main(["--epochs", "0", "--output", str(output), "--quiet"]) == 1
    assert not output.exists()


# --- digits loader --------------------------------------------------------------------------------


def row_digests(images: torch.Tensor) -> list[str]:
    return sorted(hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images)


@pytest.mark.parametrize(("split", "count"), [("train", 1438), ("test", 359), ("all", 1797)])
def test_load_digits_shapes_dtypes_and_range(split: str, count: int) -> None:
    images, labels = demo.load_digits(split)
    assert images.shape == (count, 1, 8, 8)
    assert images.dtype == torch.float32
    assert labels.shape == (count,)
    assert labels.dtype == torch.int64
    assert images.min() == 0.0
    assert images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_load_digits_all_matches_scikit_learn() -> None:
    reference = sklearn_load_digits()
    images, labels = demo.load_digits("all")
    np.testing.assert_array_equal(images[:, 0].numpy() * 16, reference.images.astype(np.float32))
    np.testing.assert_array_equal(labels.numpy(), reference.target)


def test_load_digits_split_is_a_fixed_stratified_partition() -> None:
    train_images, train_labels = demo.load_digits("train")
    test_images, test_labels = demo.load_digits("test")
    all_images, _ = demo.load_digits("all")
    assert row_digests(torch.cat([train_images, test_images])) == row_digests(all_images)
    # The split the shipped weights were trained and scored on: if this changes, retrain them.
    assert np.bincount(test_labels.numpy()).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    again_images, again_labels = demo.load_digits("test")
    assert torch.equal(again_images, test_images)
    assert torch.equal(again_labels, test_labels)
    assert len(train_labels) + len(test_labels) == 1797


def test_load_digits_returns_tensors_the_caller_may_modify() -> None:
    images, _ = demo.load_digits("test")
    images.zero_()
    assert demo.load_digits("test")[0].max() == 1.0


def test_load_digits_rejects_unknown_split() -> None:
    with pytest.raises(ValueError, match="'train', 'test' or 'all'"):
        demo.load_digits("validation")  # type: ignore[arg-type]


# --- photos ---------------------------------------------------------------------------------------


def test_load_photos_full_size_matches_scikit_learn() -> None:
    photos = demo.load_photos(size=None)
    reference = np.stack(load_sample_images().images).astype(np.float32) / 255
    assert photos.shape == (2, 3, 427, 640)
    assert photos.dtype == torch.float32
    np.testing.assert_allclose(photos.permute(0, 2, 3, 1).numpy(), reference, rtol=0, atol=1e-7)
    assert demo.PHOTO_NAMES == ("china", "flower")


@pytest.mark.parametrize(
    ("size", "shape"), [(128, (128, 192)), (64, (64, 96)), ((50, 70), (50, 70)), (427, (427, 640))]
)
def test_load_photos_resizes(size: int | tuple[int, int], shape: tuple[int, int]) -> None:
    photos = demo.load_photos(size=size)
    assert photos.shape == (2, 3, *shape)
    assert photos.dtype == torch.float32
    assert photos.min() >= 0.0
    assert photos.max() <= 1.0
    # Antialiased resizing keeps each photo's mean colour.
    full = demo.load_photos(size=None)
    torch.testing.assert_close(photos.mean((2, 3)), full.mean((2, 3)), atol=0.01, rtol=0)


def test_load_photos_default_is_small() -> None:
    assert demo.load_photos().shape == (2, 3, 128, 192)


@pytest.mark.parametrize("size", [0, -3, (0, 10), (10,)])
def test_load_photos_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(ValueError, match="size"):
        demo.load_photos(size=size)  # type: ignore[arg-type]


def test_photo_cnn_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(99)
    rng_before = torch.random.get_rng_state()
    first, second, other = demo.photo_cnn(), demo.photo_cnn(seed=0), demo.photo_cnn(seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert state_dicts_equal(first, second)
    assert not torch.equal(first.features.conv2.weight, other.features.conv2.weight)
    assert torch.equal(first.features.conv1.weight, other.features.conv1.weight)
    assert not first.training


def test_photo_cnn_runs_on_photos() -> None:
    model = demo.photo_cnn()
    assert model.features.conv1.in_channels == 3
    assert model.features.conv1.out_channels == len(demo.PHOTO_FILTER_NAMES)
    with torch.no_grad():
        logits = model(demo.load_photos())
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


def relu1_response(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.features.relu1(model.features.conv1(image[None]))[0]


def test_photo_cnn_first_layer_detects_edges_and_colours() -> None:
    model = demo.photo_cnn()
    names = demo.PHOTO_FILTER_NAMES
    # Grey image, dark left half, bright right half: a vertical edge, dark to bright.
    step = torch.zeros(3, 16, 16)
    step[:, :, 8:] = 1.0
    response = relu1_response(model, step).amax(dim=(1, 2))
    assert response[names.index("edge: dark to bright, left to right")] == pytest.approx(1.0)
    assert response[names.index("edge: bright to dark, left to right")] == 0
    assert response[names.index("edge: dark to bright, top to bottom")] == 0
    # Replicate padding: a flat image has no edges anywhere, borders included.
    flat = relu1_response(model, torch.full((3, 16, 16), 0.7))
    assert flat[:8].abs().max() < 1e-6
    # Pure red: the red-over-green channel fires, green-over-red does not.
    red = torch.zeros(3, 16, 16)
    red[0] = 1.0
    colour = relu1_response(model, red).amax(dim=(1, 2))
    assert colour[names.index("colour: red over green")] == pytest.approx(1.0)
    assert colour[names.index("colour: green over red")] == 0


# --- offline --------------------------------------------------------------------------------------


def test_nothing_touches_the_network(no_network: None) -> None:
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("example.org", 80))
    images, labels = demo.load_digits("test")
    photos = demo.load_photos()
    model = demo.digits_cnn()
    demo.photo_cnn()(photos)
    assert held_out_accuracy(model) > 0.95
    demo.train_digits_cnn(epochs=1)
    assert images.shape[0] == labels.shape[0] == 359


def test_load_photos_without_pillow_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` raise ImportError
    demo_data._photo_tensor.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install pillow"):
            demo.load_photos()
    finally:
        demo_data._photo_tensor.cache_clear()
