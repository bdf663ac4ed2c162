"""Saliency driven as the browser drives it: selections in, attribution payloads out, in order."""

from __future__ import annotations

import asyncio
import copy
import gc
import importlib
import threading
import types
import weakref
from typing import Any

import numpy as np
import pytest
import torch
import traitlets
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import wire
from modelviz_widgets.widgets.saliency import METHODS

from ._support import FrontEnd, SmallCNN, assert_unchanged, model_snapshot


@pytest.fixture
def engine() -> types.ModuleType:
    """The attribution engine the widget calls (``mv.attribute``'s module)."""
    return importlib.import_module("modelviz_widgets.capture.attribution")


def expected_map(engine, model, images, sample, target, method, **options) -> np.ndarray:
    values = engine.attribute(model, images[sample : sample + 1], target, method=method, **options)
    values = values.detach()[0]
    if method == "grad_cam":
        return (
            values.reshape(values.shape[-2:]).numpy()
            if values.dim() == 2
            else values.mean(0).numpy()
        )
    return values.sum(0).numpy()


def eval_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval()


SETTINGS: dict[str, dict[str, Any]] = {
    "saliency": {},
    "grad_x_input": {},
    "smoothgrad": {"n_samples": 4, "noise": 0.2, "seed": 3},
    "integrated_gradients": {"steps": 8},
    "guided_backprop": {},
    "occlusion": {"window": 2, "stride": 1},
}
SIGNED = {"saliency": {"abs": False}, "smoothgrad": {"abs": False}}


@pytest.mark.parametrize("method", [m for m in METHODS if m != "grad_cam"])
def test_shows_what_mv_attribute_computes(engine, cnn, images, method):
    options = SETTINGS[method]
    sal = mv.Saliency(cnn, images, target=2, method=method, asynchronous=False, sample=1, **options)
    assert sal.error == ""
    expected = expected_map(engine, cnn, images, 1, 2, method, **options, **SIGNED.get(method, {}))
    np.testing.assert_allclose(sal.current["attribution"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sal.current["input"], images[1, 0].numpy())
    meta = sal.attribution_meta
    assert meta["scale"] == "symmetric" and meta["vmin"] == -meta["vmax"]
    assert (meta["method"], meta["target"], meta["sample"]) == (method, 2, 1)
    decoded = wire.decode(sal.attribution_data, meta)
    step = (meta["vmax"] - meta["vmin"]) / 254
    assert np.abs(decoded - expected).max() <= step / 2 + 1e-6
    sal.close()


def test_saliency_agrees_with_captum(cnn, images):
    from captum.attr import Saliency as CaptumSaliency

    sal = mv.Saliency(cnn, images, target=3, method="saliency", asynchronous=False, sample=2)
    reference = CaptumSaliency(eval_copy(cnn)).attribute(images[2:3], target=3, abs=False)
    expected = reference.detach()[0].sum(0).numpy()
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(sal.current["attribution"] - expected).max() <= 1e-5 * scale
    sal.close()


def test_top_k_is_the_softmax_of_the_output(cnn, images):
    sal = mv.Saliency(cnn, images, method="saliency", asynchronous=False, top_k=3)
    with torch.no_grad():
        probabilities = torch.softmax(eval_copy(cnn)(images), dim=1)
    for sample in range(images.shape[0]):
        sal.sample = sample
        values, classes = probabilities[sample].topk(3)
        assert [p["class"] for p in sal.predictions] == classes.tolist()
        np.testing.assert_allclose([p["probability"] for p in sal.predictions], values, rtol=1e-6)
        assert sal.explained_target == int(classes[0])  # target None: the predicted class
    sal.top_k = 5
    assert len(sal.predictions) == 5
    sal.close()


def test_browser_changes_of_target_and_method_rerun(engine, cnn, images):
    sal = mv.Saliency(cnn, images, method="saliency", asynchronous=False)
    front = FrontEnd(sal)
    front.set(target=4)
    np.testing.assert_allclose(
        sal.current["attribution"],
        expected_map(engine, cnn, images, 0, 4, "saliency", abs=False),
        rtol=1e-5,
    )
    front.set(method="grad_x_input")
    np.testing.assert_allclose(
        sal.current["attribution"],
        expected_map(engine, cnn, images, 0, 4, "grad_x_input"),
        rtol=1e-5,
        atol=1e-7,
    )
    shown = [u["attribution_meta"] for u in front.updates() if "attribution_meta" in u]
    assert [(m["method"], m["target"]) for m in shown] == [
        ("saliency", 4),
        ("grad_x_input", 4),
    ]
    # Each change is answered in one message carrying the binary payloads.
    assert all("attribution_data" in u for u in front.updates() if "attribution_meta" in u)
    assert sal.explained_target == 4
    sal.close()


class Gated(nn.Module):
    """Wraps a model; while ``gate`` is closed its forward waits (from the worker thread only)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if threading.current_thread() is not threading.main_thread():
            self.calls += 1
            self.entered.set()
            assert self.gate.wait(10)
        return self.inner(x)


def test_a_newer_request_supersedes_a_running_one(cnn, images):
    model = Gated(cnn)
    sal = mv.Saliency(model, images, method="saliency", steps=16)
    assert sal.wait(10) and sal.explained_target == sal.predicted()
    front = FrontEnd(sal)
    model.gate.clear()
    model.entered.clear()
    model.calls = 0
    sal.method = "integrated_gradients"  # job 1, held inside its first forward
    assert model.entered.wait(10)
    assert sal.busy
    sal.target = 1  # job 2 supersedes it
    model.gate.set()
    assert sal.wait(10)
    shown = [u["attribution_meta"] for u in front.updates() if "attribution_meta" in u]
    assert [(m["method"], m["target"]) for m in shown] == [("integrated_gradients", 1)]
    assert not sal.busy and sal.error == ""
    # Job 1 stopped at its first progress call instead of running its 16 steps.
    assert model.calls < 2 * 16
    sal.close()


def test_progress_reported_from_a_slow_job(cnn, images):
    sal = mv.Saliency(cnn, images, method="saliency")
    sal.wait(10)
    assert sal._runner is not None
    sal._runner._progress_after = 0.0  # report at once, so a short job shows progress
    sal._runner._progress_interval = 0.0
    sal.options = {"steps": 60}
    seen: list[float] = []
    sal.observe(lambda change: seen.append(change["new"]), "progress")
    sal.method = "integrated_gradients"
    assert sal.wait(10)
    reported = [value for value in seen if value > 0]
    assert reported and all(0 < value <= 1 for value in reported)
    assert reported == sorted(reported)
    assert sal.progress == 0.0 and not sal.busy
    assert sal.cost["forward_samples"] >= 60 and sal.cost["seconds"] > 0
    sal.close()


def test_an_error_is_shown_and_the_picture_kept(engine, cnn, images, monkeypatch):
    sal = mv.Saliency(cnn, images, method="saliency", asynchronous=False)
    picture = sal.current["attribution"].copy()
    data = sal.attribution_data
    original = engine.attribute

    def failing(model, inputs, target, method="saliency", **options):
        if method == "grad_x_input":
            raise ValueError("grad_x_input broke on purpose")
        return original(model, inputs, target, method=method, **options)

    monkeypatch.setattr(engine, "attribute", failing)
    front = FrontEnd(sal)
    front.set(method="grad_x_input")
    assert sal.error == "ValueError: grad_x_input broke on purpose"
    np.testing.assert_array_equal(sal.current["attribution"], picture)
    assert sal.attribution_data == data
    front.set(method="saliency", target=1)
    assert sal.error == ""
    sal.close()


def test_errors_from_the_worker_thread_reach_the_error_trait(engine, cnn, images, monkeypatch):
    sal = mv.Saliency(cnn, images, method="saliency")
    sal.wait(10)
    picture = sal.current["attribution"].copy()

    def failing(*args: Any, **kwargs: Any) -> torch.Tensor:
        raise RuntimeError("worker failure")

    monkeypatch.setattr(engine, "attribute", failing)
    sal.target = 2
    assert sal.wait(10)
    assert sal.error == "RuntimeError: worker failure" and not sal.busy
    np.testing.assert_array_equal(sal.current["attribution"], picture)
    sal.close()


def test_results_are_applied_on_the_loop_thread(cnn, images):
    """Inside a running asyncio loop (a kernel), results are handed to the loop's thread."""
    applied: list[str] = []

    async def scenario() -> None:
        sal = mv.Saliency(cnn, images, method="saliency")
        sal.observe(
            lambda change: applied.append(threading.current_thread().name), "attribution_meta"
        )
        for _ in range(200):
            if not sal.busy:
                break
            await asyncio.sleep(0.02)
        assert not sal.busy and sal.attribution_meta["method"] == "saliency"
        sal.close()

    asyncio.run(scenario())
    assert applied == [threading.main_thread().name]


def test_wait_from_the_loop_thread_does_not_deadlock(cnn, images):
    async def scenario() -> None:
        sal = mv.Saliency(cnn, images, method="saliency")
        sal.target = 1
        assert sal.wait(10)
        assert sal.attribution_meta["target"] == 1 and not sal.busy
        sal.close()

    asyncio.run(scenario())


def test_bad_settings_give_clear_errors(cnn, images):
    with pytest.raises(ValueError, match=r"valid targets are 0\.\.4"):
        mv.Saliency(cnn, images, target=7, asynchronous=False)
    with pytest.raises(TypeError, match="unexpected keyword argument.*stepz"):
        mv.Saliency(cnn, images, stepz=3, asynchronous=False)
    sal = mv.Saliency(cnn, images, method="saliency", asynchronous=False)
    with pytest.raises(ValueError, match="features.0"):
        sal.layer = "classifier.2"
    with pytest.raises(traitlets.TraitError):
        sal.method = "lime"
    with pytest.raises(TypeError, match="valid options are"):
        sal.options = {"step": 4}
    sal.close()


def test_grad_cam_is_drawn_input_sized_on_the_chosen_layer(engine, cnn, images):
    sal = mv.Saliency(cnn, images, method="saliency", asynchronous=False)
    assert "features.0" in sal.layer_options and "classifier.2" not in sal.layer_options
    assert sal.layer == sal.layer_options[-1]
    front = FrontEnd(sal)
    front.set(method="grad_cam", layer="features.4", target=1)
    assert sal.error == ""
    expected = engine.attribute(
        cnn, images[:1], 1, method="grad_cam", layer="features.4", upsample=True
    )[0]
    assert sal.current["attribution"].shape == (8, 8)
    np.testing.assert_allclose(sal.current["attribution"], expected.numpy(), rtol=1e-5, atol=1e-7)
    assert sal.attribution_meta["layer"] == "features.4"
    sal.close()


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "modelviz-saliency" and t.is_alive()]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_hygiene_after_close_and_twenty_recreations(cnn, images, asynchronous):
    before = model_snapshot(cnn)
    for index in range(20):
        sal = mv.Saliency(
            cnn, images, method="saliency", asynchronous=asynchronous, target=index % 5
        )
        sal.wait(10)
        sal.close()
        assert sal._model is None and sal._runner is None
    assert_unchanged(cnn, before)
    assert worker_threads() == []


@pytest.mark.parametrize("asynchronous", [False, True])
def test_closed_widget_is_collectable_and_releases_the_model(images, asynchronous):
    model = SmallCNN()  # not the fixture: pytest keeps fixture values alive
    sal = mv.Saliency(model, images, method="saliency", asynchronous=asynchronous)
    sal.target = 1
    sal.wait(10)
    widget_ref, model_ref = weakref.ref(sal), weakref.ref(model)
    sal.close()
    del sal, model
    gc.collect()
    assert widget_ref() is None and model_ref() is None


def test_close_stops_a_running_job(cnn, images):
    model = Gated(cnn)
    sal = mv.Saliency(model, images, method="saliency")
    sal.wait(10)
    model.gate.clear()
    model.entered.clear()
    sal.target = 1
    assert model.entered.wait(10)
    runner = sal._runner
    closer = threading.Thread(target=sal.close)
    closer.start()
    model.gate.set()
    closer.join(10)
    assert runner is not None and not runner.busy()
    assert worker_threads() == []
    assert sal._model is None


def test_rgb_and_context_manager(engine):
    torch.manual_seed(0)
    model = SmallCNN(in_channels=3)
    photos = torch.rand(2, 3, 8, 8)
    with mv.Saliency(model, photos, method="saliency", asynchronous=False) as sal:
        assert sal.input_meta["rgb"] is True
        assert sal.current["input"].shape == (3, 8, 8)
        assert sal.current["attribution"].shape == (8, 8)
    assert sal._model is None
