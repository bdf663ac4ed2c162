"""Training statistics against independent references: numpy.histogram, torch.linalg.norm, and
activation statistics from forward hooks written here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from modelviz_widgets.capture import training_chunks, training_stats
from modelviz_widgets.capture.training import Recorder
from modelviz_widgets.capture.training_activations import unit_sums
from modelviz_widgets.capture.training_bins import HostBins, histograms
from modelviz_widgets.capture.training_stats import (
    BINS,
    QUANTITIES,
    StatsCollector,
    edges,
)

from ._support import SmallCNN


class SquashingMLP(nn.Module):
    """Linear layers with sigmoid and tanh between them: saturation to measure."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(6, 16), nn.Sigmoid(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def cnn_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = SmallCNN()
    with torch.no_grad():  # dead channels to count: a BatchNorm shift and conv biases far below 0
        layers = dict(model.named_modules())
        layers["features.1"].bias[:2] = -6.0
        layers["features.4"].bias[:3] = -10.0
    return model, torch.randn(8, 1, 8, 8), torch.randint(0, 5, (8,))


def mlp_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = SquashingMLP()
    with torch.no_grad():  # big first-layer weights: many sigmoid outputs near 0 or 1
        layers = dict(model.named_modules())
        layers["body.0"].weight.mul_(8.0)
        layers["body.2"].weight.mul_(4.0)
    return model, torch.randn(32, 6), torch.randint(0, 3, (32,))


MODELS = {"cnn": cnn_batch, "mlp": mlp_batch}


class ReferenceHooks:
    """Copies of every monitored layer's output, taken by hooks independent of the collector."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        modules = dict(model.named_modules())
        self.outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            self.outputs[name].append(output.detach().clone())  # before any in-place ReLU

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, collectors: list[StatsCollector]
) -> tuple[dict[str, torch.Tensor], ReferenceHooks]:
    """One Adam step with every collector armed; returns the weights before it and the outputs."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for collector in collectors:
        collector.arm()
    names = [spec.name for spec in collectors[0].layers]
    reference = ReferenceHooks(model, names)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    reference.remove()
    return before, reference


def layer_tensors(model: nn.Module, name: str) -> list[torch.Tensor | None]:
    """The layer's weight, bias, weight gradient and bias gradient, found by name here."""
    module = dict(model.named_modules())[name]
    weight = module._parameters.get("weight")
    bias = module._parameters.get("bias")
    return [
        weight,
        bias,
        None if weight is None else weight.grad,
        None if bias is None else bias.grad,
    ]


def check_histograms_and_norms(model: nn.Module, stats: training_stats.StepStats, names: list[str]):
    for row, name in enumerate(names):
        for column, tensor in enumerate(layer_tensors(model, name)):
            where = f"{name} {QUANTITIES[column]}"
            if tensor is None:
                assert stats.counts[row, column].sum() == 0, where
                assert np.isnan(stats.norms[row, column]), where
                assert np.isnan(stats.scales[row, column]), where
                continue
            values = tensor.detach().numpy().reshape(-1)
            scale = stats.scales[row, column]
            largest = np.abs(values).max()
            # The smallest power of two at or above the largest magnitude.
            assert scale >= largest and (largest == 0 or scale / 2 < largest), where
            expected, _ = np.histogram(values, edges(scale))
            np.testing.assert_array_equal(stats.counts[row, column], expected, err_msg=where)
            assert stats.counts[row, column].sum() == values.size, where
            assert stats.nan_counts[row, column] == 0, where
            reference = torch.linalg.norm(tensor.detach().double()).item()
            np.testing.assert_allclose(
                stats.norms[row, column], reference, rtol=1e-6, err_msg=where
            )


def check_activations(
    model: nn.Module, stats: training_stats.StepStats, names: list[str], reference: ReferenceHooks
) -> None:
    modules = dict(model.named_modules())
    for row, name in enumerate(names):
        outputs = reference.outputs[name]
        assert outputs, name
        values = torch.cat([o.reshape(-1) for o in outputs]).double()
        count, mean, std, dead, saturated = stats.activations[row]
        assert count == values.numel(), name
        np.testing.assert_allclose(mean, values.mean().item(), rtol=1e-5, atol=1e-7, err_msg=name)
        # E[x^2] - mean^2 in float32 sums: a little cancellation when the spread is small.
        np.testing.assert_allclose(
            std, values.std(unbiased=False).item(), rtol=1e-3, atol=1e-6, err_msg=name
        )
        module = modules[name]
        if isinstance(module, nn.ReLU):
            (output,) = outputs
            peaks = output.flatten(1).amax(dim=0)  # a unit is dead if it fired for no sample
            assert dead == pytest.approx((peaks <= 0).double().mean().item()), name
        else:
            assert np.isnan(dead), name
        if isinstance(module, nn.Sigmoid):
            expected = ((values < 0.01) | (values > 0.99)).double().mean().item()
            assert saturated == pytest.approx(expected), name
        elif isinstance(module, nn.Tanh):
            assert saturated == pytest.approx((values.abs() > 0.99).double().mean().item()), name
        else:
            assert np.isnan(saturated), name


def check_updates(
    model: nn.Module,
    stats: training_stats.StepStats,
    names: list[str],
    before: dict[str, torch.Tensor],
) -> None:
    for row, name in enumerate(names):
        key = f"{name}.weight"
        if key not in before:
            assert np.isnan(stats.update_norms[row]).all(), name
            continue
        old = before[key].double()
        new = dict(model.named_parameters())[key].detach().double()
        change = torch.linalg.norm(new - old).item()
        size = torch.linalg.norm(old).item()
        np.testing.assert_allclose(stats.update_norms[row], [change, size], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(stats.update_ratio[row], change / size, rtol=1e-5)
        assert change > 0, name  # Adam moved every weight


def check_samples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, collector: StatsCollector, count: int
) -> list[str]:
    """``count`` sampled steps in a row, each checked against the references; the layer names."""
    names = [spec.name for spec in collector.layers]
    for sample in range(count):
        before, reference = train_step(model, x, y, [collector])
        stats = collector.collect(sample)
        check_histograms_and_norms(model, stats, names)
        check_activations(model, stats, names, reference)
        check_updates(model, stats, names, before)
    return names


@pytest.mark.parametrize("host", [True, False], ids=["numpy", "torch"])
@pytest.mark.parametrize("which", list(MODELS))
def test_a_real_step_matches_numpy_histogram_and_linalg_norm(which, host, monkeypatch):
    if not host:
        monkeypatch.setattr(training_stats, "HOST_LIMIT", 0)
    model, x, y = MODELS[which]()
    collector = StatsCollector(model)
    names = [spec.name for spec in collector.layers]
    before, reference = train_step(model, x, y, [collector])
    stats = collector.collect(0)
    assert stats.counts.shape == (len(names), 4, BINS)
    check_histograms_and_norms(model, stats, names)
    check_activations(model, stats, names, reference)
    check_updates(model, stats, names, before)
    if which == "cnn":
        # Every layer with parameters and every activation; not pooling, flatten or dropout.
        assert names == ["features.0", "features.1", "features.2", "features.4", "features.5",
                         "classifier.2"]  # fmt: skip
        assert 0.2 < stats.activations[2, 3] < 0.9 and 0.3 < stats.activations[4, 3] < 0.9
    else:
        assert names == [f"body.{i}" for i in range(5)]
        assert stats.activations[1, 4] > 0.1 and stats.activations[3, 4] > 0.02  # saturation


@pytest.mark.parametrize("which", list(MODELS))
def test_later_samples_from_the_kept_outputs_match_the_references(which):
    # The first sample reduces every output in its hook; later ones reduce the outputs no
    # in-place operation changed (all but the BatchNorm's, before an in-place ReLU) together,
    # when collecting.
    model, x, y = MODELS[which]()
    collector = StatsCollector(model)
    names = check_samples(model, x, y, collector, 3)
    deferred = [
        name for name, later in zip(names, collector.outputs.deferred, strict=True) if later
    ]
    assert deferred == [name for name in names if name != "features.1"]


class Bumped(nn.Module):
    """A linear layer whose output is shifted in place when ``bump`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.head = nn.Linear(4, 6), nn.Linear(6, 2)
        self.bump = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.linear(x)
        if self.bump:
            hidden.add_(1.0)
        return self.head(hidden)


def test_an_output_changed_in_place_after_its_layer_is_not_counted_then_measured_in_its_hook():
    torch.manual_seed(0)
    model = Bumped()
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    collector = StatsCollector(model)
    names = [spec.name for spec in collector.layers]
    train_step(model, x, y, [collector])
    collector.collect(0)
    assert collector.outputs.deferred == [True, True]  # nothing changed the outputs then
    model.bump = True
    train_step(model, x, y, [collector])
    stats = collector.collect(1)
    # The kept output holds the shifted values, not the layer's: that call is not counted.
    assert np.isnan(stats.activations[0]).all() and stats.activations[1, 0] == 32
    assert collector.outputs.deferred == [False, True]
    _, reference = train_step(model, x, y, [collector])
    stats = collector.collect(2)
    check_activations(model, stats, names, reference)  # measured in the hook, before the shift


def test_the_large_model_path_in_many_chunks_matches_the_references(monkeypatch):
    # Large CPU models are binned, and their norms and update ratios summed, chunk by chunk: here
    # in chunks of 101 values (odd, as the last chunk of most tensors), over two samples (the
    # second copies the weights into the tensors kept from the first).
    monkeypatch.setattr(training_stats, "HOST_LIMIT", 0)
    monkeypatch.setattr(training_chunks, "CHUNK", 101)
    model, x, y = MODELS["cnn"]()
    check_samples(model, x, y, StatsCollector(model), 2)


@pytest.mark.parametrize("which", list(MODELS))
def test_numpy_and_torch_paths_give_the_same_numbers(which, monkeypatch):
    model, x, y = MODELS[which]()
    host, device = StatsCollector(model), StatsCollector(model)
    train_step(model, x, y, [host, device])
    on_host = host.collect(3)
    monkeypatch.setattr(training_stats, "HOST_LIMIT", 0)
    on_device = device.collect(3)
    for field in ("counts", "scales", "nan_counts"):
        np.testing.assert_array_equal(getattr(on_host, field), getattr(on_device, field), field)
    for field in ("norms", "update_norms", "activations"):
        np.testing.assert_allclose(
            getattr(on_host, field), getattr(on_device, field), rtol=1e-6, atol=1e-9, err_msg=field
        )


class Holder(nn.Module):
    """A module whose weight and bias are set by the test; its forward is the identity."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.sum() + self.bias.sum()


def f32(value: float, toward: float | None = None) -> float:
    x = np.float32(value)
    return float(x if toward is None else np.nextafter(x, np.float32(toward)))


EDGE_CASES = {
    # Every edge of scale 1 and both ends: numpy puts an edge value in the bin on its right,
    # and +scale in the last bin (closed on both sides).
    "edges": [float(e) for e in edges(1.0)],
    # A hair inside and outside the edges around zero and the ends.
    "neighbours": [
        f32(1.0, 0),
        f32(-1.0, 0),
        f32(0.0625, 0),
        f32(0.0625, 1),
        f32(-0.0625, 0),
        f32(-0.0625, -1),
        -0.0,
        0.0,
        1.0,
    ],
    # Just above a power of two: float32 log2 rounds it down to the exponent.
    "above_power": [f32(16.0, 100), 16.0, -3.0, 0.5],
    "tiny_above_power": [f32(0.0625, 1), -0.001],
    "all_zero": [0.0, 0.0, 0.0],
    "negative_end": [-8.0, 1.0, 2.5],
    # A vanished gradient: below 2^-124 a float32 factor BINS / 2 / scale overflows.
    "tiny": [1e-38, -5e-39, 0.0, 2.0**-149, -(2.0**-149), -(2.0**-130)],
}


@pytest.mark.parametrize("path", ["numpy", "packed", "chunks"])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_values_on_edges_are_counted_as_numpy_counts_them(case, path, monkeypatch):
    # numpy: small CPU models; packed: the small tensors of large ones, binned together; chunks:
    # their large tensors, in chunks (here of two values: an odd tensor ends with one alone).
    if path != "numpy":
        monkeypatch.setattr(training_stats, "HOST_LIMIT", 0)
    if path == "chunks":
        monkeypatch.setattr(training_chunks, "CHUNK", 2)
    values = torch.tensor(EDGE_CASES[case], dtype=torch.float32)
    model = nn.Sequential(Holder(values, -values[:3] * 0.5))
    collector = StatsCollector(model)
    collector.arm()
    model(torch.ones(1)).sum().backward()  # gradients: all ones
    stats = collector.collect(0)
    for column, tensor in enumerate(layer_tensors(model, "0")):
        assert tensor is not None
        numbers = tensor.detach().numpy()
        largest = np.abs(numbers).max()
        scale = stats.scales[0, column]
        assert largest <= scale and (largest == 0 or scale / 2 < largest), (case, column, scale)
        expected, _ = np.histogram(numbers, edges(scale))
        np.testing.assert_array_equal(stats.counts[0, column], expected, err_msg=f"{case} {column}")
        assert expected.sum() == numbers.size
    assert stats.scales[0, 2] == 1.0 and stats.counts[0, 2, -1] == len(values)  # ones: last bin
    assert stats.scales[0, 3] == 1.0 and stats.counts[0, 3, -1] == min(len(values), 3)


@pytest.mark.parametrize("path", ["numpy", "packed", "chunks"])
def test_a_nan_gradient_is_counted_and_alerted_not_raised(path, monkeypatch):
    if path != "numpy":
        monkeypatch.setattr(training_stats, "HOST_LIMIT", 0)
    if path == "chunks":
        monkeypatch.setattr(training_chunks, "CHUNK", 4)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    recorder = Recorder(model, every=1)
    model(torch.randn(3, 4)).sum().backward()
    model[2].weight.grad[0, :2] = float("nan")
    model[2].weight.grad[1, 0] = float("inf")
    _, stats, alerts = recorder.record(loss=1.0)
    assert stats is not None
    grad = model[2].weight.grad.numpy()
    np.testing.assert_array_equal(stats.nan_counts[2], [0, 0, 2, 0])
    assert stats.nan_counts[[0, 1]].sum() == 0
    # The bins hold what numpy.histogram counts (NaN and Inf in none), the scale ignores them.
    finite = grad[np.isfinite(grad)]
    assert stats.scales[2, 2] == 2.0 ** np.ceil(np.log2(np.abs(finite).max()))
    expected, _ = np.histogram(grad[~np.isnan(grad)], edges(stats.scales[2, 2]))
    np.testing.assert_array_equal(stats.counts[2, 2], expected)
    assert stats.norms[2, 2] == np.inf  # torch.linalg.norm of the non-NaN values
    assert [(a.layer, a.kind) for a in alerts] == [("2", "nan")]
    # A NaN loss is an alert too, and the next steps still record.
    recorder.collector.arm()
    _, _, alerts = recorder.record(loss=torch.tensor(float("nan")))
    assert ("", "loss") in [(a.layer, a.kind) for a in alerts]
    assert recorder.history.steps == [0, 1]
    assert np.isnan(recorder.history.losses[1])
    recorder.close()


def test_vanishing_gradients_of_a_deep_sigmoid_net_are_alerted():
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(12):
        layers += [nn.Linear(16, 16), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(16, 2))
    recorder = Recorder(model, every=1)
    nn.functional.cross_entropy(
        model(torch.randn(8, 16)), torch.zeros(8, dtype=torch.long)
    ).backward()
    _, stats, alerts = recorder.record(loss=0.7)
    assert stats is not None
    grads = stats.norms[:, 2]
    # The first layer's gradient is orders of magnitude below the last one's.
    assert grads[0] < 1e-4 * grads[-1]
    recorder.close()
    # What the alert threshold says, checked here from the norms themselves.
    ratio = stats.norms[:, 2] / stats.norms[:, 0]
    vanishing = {a.layer for a in alerts if a.kind == "vanishing"}
    names = recorder.layer_names
    assert vanishing and vanishing == {names[i] for i in range(len(names)) if ratio[i] < 1e-7}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_the_kept_layout_bins_as_numpy_histogram(case):
    values = np.array(EDGE_CASES[case], dtype=np.float32)
    others = [np.linspace(-3, 5, 17, dtype=np.float32), np.full(4, 2.0**-40, dtype=np.float32)]
    bins = HostBins()
    for call in range(3):  # later calls reuse the layout, the buffer and the factors
        arrays = [values * 2.0**call, *others]
        counts, scales, squares = bins([torch.from_numpy(a) for a in arrays])
        assert bins.leading(values.size) is not None  # the values went through the kept buffer
        for row, array in enumerate(arrays):
            largest = np.abs(array).max()
            assert largest <= scales[row] and (largest == 0 or scales[row] / 2 < largest)
            expected, _ = np.histogram(array, edges(scales[row]))
            np.testing.assert_array_equal(counts[row, 1 : BINS + 1], expected, err_msg=case)
            assert counts[row].sum() == array.size
            reference = np.linalg.norm(array.astype(np.float64))
            np.testing.assert_allclose(np.sqrt(squares[row]), reference, rtol=1e-12)


def check_large_path(
    tensors: list[torch.Tensor], packed: training_chunks.PackedTensors | None = None
) -> None:
    """The large-model path's counts and scales against numpy.histogram, row by row."""
    found = training_chunks.histograms_cpu(tensors, None, packed)
    assert found is not None
    counts, scales = found[0].numpy(), found[1].numpy()
    for row, tensor in enumerate(tensors):
        array = tensor.numpy()
        largest = float(np.abs(array).max())
        assert scales[row] == (2.0 ** np.ceil(np.log2(largest)) if largest > 0 else 1.0)
        expected, _ = np.histogram(array, edges(float(scales[row])))
        np.testing.assert_array_equal(counts[row, 1 : BINS + 1], expected, err_msg=str(row))
        assert counts[row].sum() == array.size


def test_thousands_of_small_tensors_are_each_counted_in_their_own_table():
    # More tables than float32 numbers their starts exactly (2^24 / 1,089 = 15,406).
    generator = torch.Generator().manual_seed(0)
    tensors = [torch.randn(3, generator=generator) * 4.0 ** (k % 5) for k in range(15_600)]
    check_large_path(tensors)


@pytest.mark.parametrize("default", [torch.float16, torch.float64])
def test_a_vanished_gradient_is_binned_whatever_the_default_dtype(default):
    values = torch.tensor(EDGE_CASES["tiny"], dtype=torch.float32)
    before = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        counts, scales, _ = histograms([values])  # the general path (and a GPU's)
    finally:
        torch.set_default_dtype(before)
    assert counts is not None and scales is not None
    expected, _ = np.histogram(values.numpy(), edges(float(scales[0])))
    np.testing.assert_array_equal(counts[0, 1 : BINS + 1].numpy(), expected)
    assert counts[0, BINS + 2] == 0  # no NaN counted


def test_the_update_ratio_ignores_the_default_dtype():
    model, x, y = MODELS["cnn"]()  # float32, as is the small-model path's copy of the weights
    collector = StatsCollector(model)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        check_samples(model, x, y, collector, 2)
    finally:
        torch.set_default_dtype(before)


def test_the_large_model_path_ignores_the_default_dtype():
    generator = torch.Generator().manual_seed(0)
    tensors = [torch.randn(3, 5, generator=generator), torch.tensor([f32(0.0625, 0), 1.0])]
    packed = training_chunks.PackedTensors()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)  # the kept buffers are float32 all the same
    try:
        check_large_path(tensors, packed)
    finally:
        torch.set_default_dtype(default)


def test_the_kept_layouts_copy_parameters_that_require_grad_outside_no_grad():
    # Both kept buffers are filled by one in-place copy; a parameter copied in must not make
    # them part of an autograd graph (which would stop their numpy views from being read).
    generator = torch.Generator().manual_seed(0)
    parameters = [nn.Parameter(torch.randn(4, 6, generator=generator)) for _ in range(2)]
    bins = HostBins()
    counts, scales, _ = bins(list(parameters))
    assert not any(view.requires_grad for view in bins._views)  # no history recorded into them
    for row, parameter in enumerate(parameters):
        expected, _ = np.histogram(parameter.detach().numpy(), edges(scales[row]))
        np.testing.assert_array_equal(counts[row, 1 : BINS + 1], expected)
    found = training_chunks.histograms_cpu(list(parameters), None, training_chunks.PackedTensors())
    assert found is not None and not any(part.requires_grad for part in found[:3])


def test_the_kept_layout_hands_a_nan_to_the_general_path():
    bins = HostBins()
    array = np.array([1.0, np.nan, -0.5, np.inf], dtype=np.float32)
    counts, scales, _ = bins([torch.from_numpy(array)])
    assert counts[0, BINS + 2] == 1 and scales[0] == 1.0  # the NaN counted apart, Inf above
    expected, _ = np.histogram(array[~np.isnan(array)], edges(1.0))
    np.testing.assert_array_equal(counts[0, 1 : BINS + 1], expected)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "permuted", "strided"])
def test_unit_sums_follow_the_units_whatever_the_memory_layout(layout):
    values = torch.randn(6, 3, 4, 5)
    if layout == "channels_last":
        values = values.contiguous(memory_format=torch.channels_last)
    elif layout == "permuted":
        values = torch.randn(6, 4, 5, 3).permute(0, 3, 1, 2)
    elif layout == "strided":
        values = torch.randn(6, 3, 8, 5)[:, :, ::2]
    np.testing.assert_allclose(
        unit_sums(values).numpy(), values.double().sum(dim=0).numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_counts_past_what_a_half_precision_float_holds_stay_exact(dtype):
    # float16 holds whole numbers exactly up to 2,048, bfloat16 up to 256: the dead units and the
    # saturated outputs are counted past both (float16 takes the numpy path, bfloat16 torch's).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 3001), nn.ReLU(), nn.Linear(3001, 121), nn.Sigmoid())
    model = model.to(dtype)
    with torch.no_grad():
        model[0].bias[:2501] = -50.0  # 2,501 of 3,001 ReLU units, and some more, never fire
        model[0].weight.mul_(0.01)
        model[2].bias[::2] = 20.0  # most sigmoid outputs saturate, near 1 and near 0
        model[2].bias[1::2] = -20.0
        model[2].bias[:11] = 0.0
    collector = StatsCollector(model)
    reference = ReferenceHooks(model, ["1", "3"])
    collector.arm()
    model(torch.randn(61, 8, dtype=dtype)).float().sum().backward()  # 2,745 dead, 6,710 saturated
    stats = collector.collect(0)
    reference.remove()
    (relu,), (sigmoid,) = reference.outputs["1"], reference.outputs["3"]
    dead = int((relu.amax(dim=0) <= 0).sum())
    saturated = int(((sigmoid < 0.01) | (sigmoid > 1.0 - 0.01)).sum())  # in the layer's dtype
    assert dead > 2048 and saturated > 2048
    assert stats.activations[1, 3] == dead / relu.shape[1]
    assert stats.activations[3, 4] == saturated / sigmoid.numel()
