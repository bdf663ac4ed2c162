"""Saliency: which input pixels drive a prediction, drawn over the input, computed in a thread."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
import traitlets
from torch import nn

from ..capture.attribution import METHODS, OPTIONS
from ..capture.hooks import dry_run, model_lock, output_logits, removing, visual_mode
from ..capture.inputs import as_batch, call_model, model_device, move_to_device
from ..capture.layers import SPATIAL_KINDS, check_model, layers, unknown_layer_message
from .base import ModelWidget, load_bundle
from .feature_maps import as_picture
from .jobs import JobRunner, Progress

METHOD_OPTIONS: dict[str, frozenset[str]] = {
    # The widget always lays Grad-CAM over the input, so upsampling is not the user's choice.
    method: frozenset(OPTIONS[method]) - {"upsample"}
    for method in METHODS
}
"""The ``mv.attribute`` options each method takes; others given to the widget are not passed."""

SHOWN_DEFAULTS: dict[str, dict[str, Any]] = {
    "saliency": {"abs": False},
    "smoothgrad": {"abs": False},
}
"""Where the widget's defaults differ from ``mv.attribute``'s: signed gradients, so that red and
blue mean raising and lowering the score."""

ALL_OPTIONS = frozenset().union(*METHOD_OPTIONS.values())


def engine() -> ModuleType:
    """``modelviz_widgets.capture.attribution``, imported when first needed."""
    return importlib.import_module("modelviz_widgets.capture.attribution")


def as_map(attribution: torch.Tensor, sample_shape: torch.Size, method: str) -> torch.Tensor:
    """One sample's attribution as the 2-D map drawn over the input.

    Attributions shaped like the input sum over the channel axis (the signed total per pixel);
    a Grad-CAM map copied to every channel is averaged instead. 1-D maps become one row.
    """
    if attribution.shape == sample_shape and attribution.dim() >= 2:
        attribution = attribution.mean(0) if method == "grad_cam" else attribution.sum(0)
    if attribution.dim() == 1:
        return attribution.reshape(1, -1)
    if attribution.dim() > 2:
        return attribution.reshape(-1, attribution.shape[-1])
    return attribution


@dataclass(frozen=True)
class Request:
    """Everything one attribution depends on."""

    method: str
    target: int
    layer: str | None
    sample: int
    options: tuple[tuple[str, Any], ...]


class Saliency(ModelWidget):
    """Attribution of a target class score to the input pixels, over the input, with controls.

    Red pixels raise the target score, blue ones lower it (a symmetric scale around 0). Changing
    ``method``, ``target``, ``layer`` or ``sample`` re-runs ``mv.attribute`` in a background
    thread; a newer request cancels one still running, whose result is dropped.

    Parameters
    ----------
    model
        Any differentiable ``nn.Module``; it is left exactly as it was.
    inputs
        ``[N, C, H, W]`` images (RGB when C is 3), ``[N, C, L]`` signals, or one unbatched sample.
    target
        Class index explained; ``None`` explains each sample's predicted class.
    method
        One of ``"saliency"``, ``"grad_x_input"``, ``"smoothgrad"``, ``"integrated_gradients"``,
        ``"grad_cam"``, ``"guided_backprop"``, ``"occlusion"``.
    layer
        Layer for Grad-CAM (a ``named_modules()`` name); by default the last convolution-like one.
    asynchronous
        ``False`` computes in the calling thread, so every change is finished when it returns.
    **options
        ``mv.attribute`` options (``steps``, ``baseline``, ``internal_batch_size``, ``n_samples``,
        ``noise``, ``seed``, ``window``, ``stride``), each passed to the methods that take it;
        other keywords set traits (``blend``, ``top_k``, ``sample``, ``encoding``, ...).
    """

    _esm = load_bundle("saliency")
    _selections = frozenset({"method", "target", "layer", "sample", "top_k"})

    method = traitlets.Enum(list(METHODS), default_value="integrated_gradients").tag(
        sync=True, echo_update=False
    )
    """Attribution method shown."""

    method_options = traitlets.List(traitlets.Unicode(), list(METHODS)).tag(sync=True)
    """Methods the view offers."""

    target = traitlets.Int(None, allow_none=True).tag(sync=True, echo_update=False)
    """Class whose score is explained; ``None`` for the predicted class of the sample."""

    explained_target = traitlets.Int(0).tag(sync=True)
    """Class the picture on screen explains (``target``, or the prediction when it is None)."""

    n_classes = traitlets.Int(1).tag(sync=True)
    """Number of classes (scores) of the model output."""

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Layer Grad-CAM explains; other methods ignore it."""

    layer_options = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Layers with maps over space or time, which Grad-CAM can use."""

    sample = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Index of the sample of the batch shown."""

    n_samples = traitlets.Int(1).tag(sync=True)
    """Number of samples in the inputs."""

    blend = traitlets.Float(0.6).tag(sync=True)
    """Opacity of the attribution drawn over the input, 0..1 (applied in the browser)."""

    top_k = traitlets.Int(5).tag(sync=True, echo_update=False)
    """How many of the most probable classes ``predictions`` lists."""

    predictions = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Most probable classes of the sample, ``{"class", "probability"}``, softmax of the output."""

    input_data = traitlets.Bytes(b"").tag(sync=True)
    """The input sample, ``[3, H, W]`` (RGB) or ``[H, W]``, encoded."""

    input_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``input_data``; ``rgb`` says whether it is a colour image."""

    attribution_data = traitlets.Bytes(b"").tag(sync=True)
    """The attribution map ``[H, W]`` (summed over channels), symmetric scale, encoded."""

    attribution_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``attribution_data``, with the method, target, sample and layer it shows."""

    busy = traitlets.Bool(False).tag(sync=True)
    """Whether an attribution is being computed."""

    progress = traitlets.Float(0.0).tag(sync=True)
    """Fraction done of the running attribution, 0..1 (reported once it runs longer than 0.3 s)."""

    cost = traitlets.Dict().tag(sync=True)
    """Cost of the picture shown: ``seconds``, and ``forward_samples`` run through the model."""

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        target: int | None = None,
        method: str = "integrated_gradients",
        layer: str | None = None,
        *,
        asynchronous: bool = True,
        **kwargs: Any,
    ) -> None:
        self._model: nn.Module | None = check_model(model)
        self._inputs: torch.Tensor | None = as_batch(model, inputs).detach()
        self._engine = engine()
        self._options = {key: kwargs.pop(key) for key in list(kwargs) if key in ALL_OPTIONS}
        self._asynchronous = asynchronous
        self._ready = False
        outputs = dry_run(model, self._inputs[:1])
        spatial = [
            info.name
            for info in layers(model)
            if info.kind in SPATIAL_KINDS
            and info.name in outputs
            and outputs[info.name][1]
            and len(outputs[info.name][0] or ()) >= 3
        ]
        with torch.no_grad(), visual_mode(model):
            batch = move_to_device(self._inputs, model_device(model))
            logits = output_logits(call_model(model, batch)).detach()
        self._probabilities = torch.softmax(logits.reshape(logits.shape[0], -1).float(), dim=1)
        self._runner: JobRunner | None = JobRunner(
            self._engine.Cancelled, self._show_progress, name="modelviz-saliency"
        )
        super().__init__(
            n_samples=int(self._inputs.shape[0]),
            n_classes=int(self._probabilities.shape[1]),
            layer_options=spatial,
            **kwargs,
        )
        try:
            self.method = method
            self.layer = layer if layer is not None else (spatial[-1] if spatial else "")
            self.target = target
        except Exception:
            self.close()  # a bad argument: leave no open comm or worker behind
            raise
        self._ready = True
        self._update_predictions()
        self._request()

    # -- validation --

    @traitlets.validate("target")
    def _valid_target(self, proposal: dict[str, Any]) -> int | None:
        return self._valid_class(proposal["value"], self.n_classes)

    @traitlets.validate("sample")
    def _valid_sample(self, proposal: dict[str, Any]) -> int:
        return self._in_range("sample", proposal["value"], self.n_samples)

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name and name not in self.layer_options:
            raise ValueError(
                "Grad-CAM needs a layer with a spatial map: "
                + unknown_layer_message(name, self.layer_options)
            )
        return name

    @traitlets.validate("blend")
    def _valid_blend(self, proposal: dict[str, Any]) -> float:
        return min(1.0, max(0.0, float(proposal["value"])))

    @traitlets.validate("top_k")
    def _valid_top_k(self, proposal: dict[str, Any]) -> int:
        return max(1, int(proposal["value"]))

    # -- requests --

    @traitlets.observe("method", "target", "layer")
    def _on_selection(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._request()

    @traitlets.observe("sample")
    def _on_sample(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._update_predictions()
            self._request()

    @traitlets.observe("top_k")
    def _on_top_k(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._update_predictions()

    @property
    def options(self) -> dict[str, Any]:
        """The ``mv.attribute`` options in use (each passed only to the methods that take it).

        Assign a new dict to change them; the picture is recomputed.
        """
        return dict(self._options)

    @options.setter
    def options(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - ALL_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown attribution option(s) {', '.join(unknown)}; "
                f"valid options are {', '.join(sorted(ALL_OPTIONS))}"
            )
        self._options = dict(options)
        self._request()

    def predicted(self, sample: int | None = None) -> int:
        """Most probable class of ``sample`` (the selected one by default)."""
        index = self.sample if sample is None else sample
        return int(self._probabilities[index].argmax())

    def _update_predictions(self) -> None:
        k = min(self.top_k, self.n_classes)
        values, classes = self._probabilities[self.sample].topk(k)
        self.predictions = [
            {"class": int(c), "probability": float(p)}
            for p, c in zip(values.tolist(), classes.tolist(), strict=True)
        ]

    def _current_request(self) -> Request:
        options = self._options_for(self.method)
        if self.method == "grad_cam":
            options["upsample"] = True  # drawn over the input, so input-sized
        return Request(
            method=self.method,
            target=self.predicted() if self.target is None else self.target,
            layer=(self.layer or None) if self.method == "grad_cam" else None,
            sample=self.sample,
            options=tuple(sorted(options.items())),
        )

    def _options_for(self, method: str) -> dict[str, Any]:
        chosen = {k: v for k, v in self._options.items() if k in METHOD_OPTIONS[method]}
        return {**SHOWN_DEFAULTS.get(method, {}), **chosen}

    def _request(self) -> None:
        request = self._current_request()
        model, inputs, runner = self._model, self._inputs, self._runner
        if model is None or inputs is None or runner is None:
            raise RuntimeError("the widget is closed; create a new one")
        if not self._asynchronous:
            try:
                result = compute(self._engine, model, inputs, request, False)
            except Exception as error:
                self._show_error(error)
            else:
                self._show(result)
            return
        self.busy = True
        attribution = self._engine
        runner.submit(
            lambda progress: compute(attribution, model, inputs, request, progress),
            self._show,
            self._show_error,
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latest request is computed and shown; False on timeout."""
        return self._runner.wait(timeout) if self._runner is not None else True

    # -- answers (on the widget's thread) --

    def _show(self, result: Result) -> None:
        inputs = self._inputs
        if inputs is None:
            return
        request = result.request
        sample_input = inputs[request.sample]
        picture, rgb = as_picture(sample_input)
        attribution_map = as_map(result.attribution, sample_input.shape, request.method)
        meta = {
            "method": request.method,
            "target": request.target,
            "sample": request.sample,
            "layer": request.layer or "",
        }
        updates = {
            **self._payload("input", picture, scale="linear", extra_meta={"rgb": rgb}),
            **self._payload("attribution", attribution_map, scale="symmetric", extra_meta=meta),
            "explained_target": request.target,
            "cost": {"seconds": result.seconds, "forward_samples": result.forward_samples},
            "busy": False,
            "progress": 0.0,
        }
        self._apply(updates)

    def _show_error(self, error: BaseException) -> None:
        with self.hold_sync():
            self.busy = False
            self.progress = 0.0
            self.error = f"{type(error).__name__}: {error}"

    def _show_progress(self, fraction: float) -> None:
        if self.busy:
            self.progress = fraction

    def _release(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close()
        self._runner = None
        self._model = None
        self._inputs = None
        super()._release()


@dataclass(frozen=True)
class Result:
    """One finished attribution of one sample."""

    request: Request
    attribution: torch.Tensor
    seconds: float
    forward_samples: int


def compute(
    attribution: ModuleType,
    model: nn.Module,
    inputs: torch.Tensor,
    request: Request,
    progress: Progress | bool,
) -> Result:
    """Run ``mv.attribute`` for one sample, counting the samples that went through the model.

    ``progress`` is the worker's callable, or False for no progress display at all.
    """
    rows = [0]

    def count(module: nn.Module, args: tuple[Any, ...]) -> None:
        first = args[0] if args else None
        rows[0] += int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() else 1

    batch = inputs[request.sample : request.sample + 1]
    started = time.perf_counter()
    # Under the model's lock, so the counting hook sees only this computation's forwards.
    with model_lock(model), removing([model.register_forward_pre_hook(count)]):
        values = attribution.attribute(
            model,
            batch,
            request.target,
            method=request.method,
            layer=request.layer,
            progress=progress,
            **dict(request.options),
        )
    seconds = time.perf_counter() - started
    return Result(request, values.detach()[0].float().cpu(), seconds, rows[0])
