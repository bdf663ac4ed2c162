"""FeatureMaps: every channel of one layer's output, and one channel drawn large."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import traitlets
from torch import nn

from ..capture import capture
from ..capture.hooks import dry_run, split_call
from ..capture.inputs import as_batch
from ..capture.layers import check_model, layers, spatial_first, unknown_layer_message
from .base import ModelWidget, load_bundle


def as_maps(activation: torch.Tensor) -> torch.Tensor:
    """A batched layer output as ``[N, C, H, W]``: 1-D maps become one row, vectors one strip."""
    batch = activation.shape[0]
    rest = activation.shape[1:]
    if len(rest) == 0:
        return activation.reshape(batch, 1, 1, 1)
    if len(rest) == 1:
        return activation.reshape(batch, 1, 1, rest[0])
    if len(rest) == 2:
        return activation.reshape(batch, rest[0], 1, rest[1])
    # 3-D maps (and beyond): stack the leading spatial axes as rows.
    return activation.reshape(batch, rest[0], -1, rest[-1])


def as_picture(sample: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """One input sample as something to look at: ``[3, H, W]`` RGB, or a 2-D heatmap."""
    if sample.dim() == 3 and sample.shape[0] == 3:
        return sample, True
    if sample.dim() == 3:
        # Not RGB: one channel is shown as is, several as their mean.
        return sample.mean(dim=0), False
    if sample.dim() == 2:
        return sample, False
    return sample.reshape(1, -1), False


class FeatureMaps(ModelWidget):
    """A layer's feature maps for the given inputs: a grid of all channels and one channel large.

    Changing ``layer`` re-runs the model with a hook on that layer only; changing ``channel`` or
    ``sample`` is answered from the cached capture.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is left exactly as it was.
    inputs
        A tensor: ``[C, H, W]`` or ``[N, C, H, W]`` for a 2-D conv net, ``[C, L]`` / ``[N, C, L]``
        for a 1-D one, ``[N, F]`` for a fully connected one.
    layer
        Layer name to open on; by default the first convolution-like layer.
    """

    _esm = load_bundle("feature_maps")
    _selections = frozenset({"layer", "channel", "sample", "encoding", "byte_budget"})

    layer = traitlets.Unicode("").tag(sync=True, echo_update=False)
    """Name of the layer shown (a ``named_modules()`` name; ``"name#k"`` for call ``k`` of a
    module that runs several times in one forward)."""

    layer_options = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Layers that can be shown, conv-like first: ``{name, kind, module_type, output_shape}``."""

    channel = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Index of the channel drawn large."""

    n_channels = traitlets.Int(1).tag(sync=True)
    """Number of channels of the layer shown (1 for a linear layer, drawn as one strip)."""

    sample = traitlets.Int(0).tag(sync=True, echo_update=False)
    """Index of the sample of the batch shown."""

    n_samples = traitlets.Int(1).tag(sync=True)
    """Number of samples in the inputs."""

    colormap = traitlets.Enum(["auto", "viridis", "rdbu", "gray"], default_value="auto").tag(
        sync=True
    )
    """Colormap: ``"auto"`` is viridis, or red/blue for data with both signs."""

    grid_data = traitlets.Bytes(b"").tag(sync=True)
    """All channels of the selected sample, ``[C, h, w]``, encoded (see ``grid_meta``)."""

    grid_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``grid_data`` (shape, dtype, range, non-finite counts, seq)."""

    channel_data = traitlets.Bytes(b"").tag(sync=True)
    """The selected channel, ``[H, W]``, encoded (see ``channel_meta``)."""

    channel_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``channel_data``."""

    input_data = traitlets.Bytes(b"").tag(sync=True)
    """The selected input sample, ``[3, H, W]`` (RGB) or ``[H, W]``, encoded."""

    input_meta = traitlets.Dict().tag(sync=True)
    """Metadata of ``input_data``; ``rgb`` says whether it is a colour image."""

    def __init__(
        self, model: nn.Module, inputs: torch.Tensor, layer: str | None = None, **kwargs: Any
    ) -> None:
        self._model = check_model(model)
        self._inputs: torch.Tensor | None = as_batch(model, inputs)
        self._maps: torch.Tensor | None = None
        self._ready = False
        outputs = dry_run(model, self._inputs[:1])
        infos = layers(model)
        self._infos = {
            info.name: dataclasses.replace(info, output_shape=outputs[info.name][0])
            for info in infos
            if info.name in outputs and outputs[info.name][1]
        }
        self._not_tensor = {name for name, (_, is_tensor) in outputs.items() if not is_tensor}
        options = [
            {**info.as_dict(), "output_shape": list(info.output_shape or ())}
            for info in spatial_first(list(self._infos.values()))
        ]
        if not options:
            raise ValueError("the model has no layer with a tensor output to show")
        super().__init__(layer_options=options, n_samples=int(self._inputs.shape[0]), **kwargs)
        self.layer = layer if layer is not None else options[0]["name"]
        self._ready = True
        self._show_layer()

    @property
    def maps(self) -> torch.Tensor | None:
        """The selected layer's output for every sample as ``[N, C, H, W]`` (the capture the view
        draws from; ``None`` after ``close()``)."""
        return self._maps

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name in self._not_tensor:
            module = dict(self._model.named_modules())[name]
            raise self._refuse(
                f"layer {name!r} ({type(module).__name__}) returns a tuple or other non-tensor "
                f"output, which FeatureMaps cannot draw; valid layers are: {', '.join(self._infos)}"
            )
        base, call = split_call(name)
        if name not in self._infos and not (call is not None and base in self._infos):
            raise self._refuse(unknown_layer_message(name, self._infos))
        return name

    @traitlets.validate("channel")
    def _valid_channel(self, proposal: dict[str, Any]) -> int:
        return self._in_range("channel", proposal["value"], self.n_channels)

    @traitlets.validate("sample")
    def _valid_sample(self, proposal: dict[str, Any]) -> int:
        return self._in_range("sample", proposal["value"], self.n_samples)

    @traitlets.observe("layer")
    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._show_layer()

    @traitlets.observe("channel")
    def _on_channel(self, change: dict[str, Any]) -> None:
        if self._ready and self._maps is not None:
            self._apply(self._channel_payload())

    @traitlets.observe("sample")
    def _on_sample(self, change: dict[str, Any]) -> None:
        if self._ready and self._maps is not None:
            self._apply(
                {**self._grid_payload(), **self._channel_payload(), **self._input_payload()}
            )

    @traitlets.observe("encoding", "byte_budget")
    def _on_encoding(self, change: dict[str, Any]) -> None:
        if self._ready and self._maps is not None:
            self._apply(
                {**self._grid_payload(), **self._channel_payload(), **self._input_payload()}
            )

    def _show_layer(self) -> None:
        """Re-run the model with a hook on the selected layer only, then publish everything."""
        try:
            activation = capture(self._model, self._inputs, self.layer).activations[self.layer]
            if activation.numel() == 0:
                raise ValueError(
                    f"layer {self.layer!r} returned an empty tensor of shape "
                    f"{list(activation.shape)}: there is nothing to draw; pick another layer"
                )
        except Exception as error:
            self._fail(error)
            raise
        self._maps = as_maps(activation)
        n_channels = int(self._maps.shape[1])
        channel = min(self.channel, n_channels - 1)
        with self.hold_sync():
            # Order matters: the channel count first, so the clamped channel validates.
            self.n_channels = n_channels
            self.set_trait("channel", channel)
            updates = {**self._grid_payload(), **self._channel_payload()}
            if not self.input_meta:  # the input only changes with the sample
                updates.update(self._input_payload())
            self._apply(updates)

    def _grid_payload(self) -> dict[str, Any]:
        assert self._maps is not None
        return self._payload("grid", self._maps[self.sample])

    def _channel_payload(self) -> dict[str, Any]:
        assert self._maps is not None
        return self._payload(
            "channel",
            self._maps[self.sample, self.channel],
            extra_meta={"layer": self.layer, "channel": self.channel, "sample": self.sample},
        )

    def _input_payload(self) -> dict[str, Any]:
        assert self._inputs is not None
        picture, rgb = as_picture(self._inputs[self.sample])
        return self._payload("input", picture, scale="linear", extra_meta={"rgb": rgb})

    def _release(self) -> None:
        self._maps = None
        self._inputs = None
        super()._release()
