"""export_html: one offline page, the embedded state read back and checked against the widgets."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import ipywidgets
import numpy as np
import pytest
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets import export, wire

from ._support import SmallCNN, assert_unchanged, hooked_output, model_snapshot

HOSTILE = "</script><img src=x onerror=alert(1)>"
STATE = re.compile(r'<script type="application/json" id="mvx-state">(.*?)</script>', re.DOTALL)


def page_state(path: Path) -> dict[str, Any]:
    """The state embedded in an exported page, parsed as the page's JSON.parse would."""
    found = STATE.findall(path.read_text(encoding="utf-8"))
    assert len(found) == 1
    state: dict[str, Any] = json.loads(found[0])
    return state


def buffer_of(entry: dict[str, Any], name: str) -> bytes:
    (buffer,) = [b for b in entry["buffers"] if b["path"] == [name]]
    return base64.b64decode(buffer["data"])


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor]:
    images, _ = mv.demo.load_digits("test")
    return mv.demo.digits_cnn(), images[:8]


def test_feature_maps_page_is_offline_and_its_state_round_trips(digits, tmp_path):
    model, images = digits
    fm = mv.FeatureMaps(model, images)
    path = mv.export_html(fm, tmp_path / "fm.html", title="digits")
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE)
    assert not re.search(r"\b(src|href)\s*=", text, re.IGNORECASE)
    assert text.lower().count("</script") == 2  # the state block and the runtime, nothing else
    state = page_state(path)
    entry = state["views"][fm.model_id]
    assert entry["class"] == "FeatureMaps" and state["tree"]["kind"] == "view"
    assert state["modules"][entry["module"]] == fm._esm
    live = fm.get_state()
    for name in ("channel_data", "grid_data", "input_data"):
        assert buffer_of(entry, name) == bytes(live[name])
    assert entry["state"]["channel_meta"] == live["channel_meta"]
    # And the bytes mean the layer's output: decoded, they are the hooked reference within a step.
    decoded = wire.decode(buffer_of(entry, "channel_data"), entry["state"]["channel_meta"])
    expected = hooked_output(model, images, fm.layer)[0, 0].numpy()
    meta = entry["state"]["channel_meta"]
    assert np.abs(decoded - expected).max() <= (meta["vmax"] - meta["vmin"]) / 254 / 2 + 1e-6
    assert "layer" in entry["kernel_traits"] and "colormap" not in entry["kernel_traits"]


def test_user_strings_and_markup_are_escaped(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module(HOSTILE, nn.Conv2d(1, 2, 3))
    fm = mv.FeatureMaps(model, torch.randn(1, 1, 6, 6))
    lstm = nn.LSTM(3, 4, batch_first=True)
    words = [["ok", HOSTILE, "<!--", "&amp;"]]
    hs = mv.HiddenStates(lstm, torch.randn(1, 4, 3), tokens=words)
    note = ipywidgets.HTML(f"<b>bold</b>{HOSTILE}")
    path = mv.export_html(ipywidgets.VBox([fm, hs, note]), tmp_path / "x.html", title=HOSTILE)
    text = path.read_text(encoding="utf-8")
    assert text.lower().count("</script") == 2
    assert "<img" not in text.lower() and "<b>" not in text and "<!--" not in text
    state = page_state(path)
    assert state["title"] == HOSTILE
    assert state["views"][fm.model_id]["state"]["layer"] == HOSTILE
    assert HOSTILE in json.dumps(state["views"][hs.model_id]["state"], ensure_ascii=False)
    html_node = state["tree"]["children"][2]
    assert html_node == {"kind": "text", "widget": "HTML", "text": f"<b>bold</b>{HOSTILE}"}


def test_a_composite_exports_its_figures_and_a_box_of_two_views_shares_one_module(tmp_path):
    torch.manual_seed(0)
    cnn = SmallCNN()
    filters = mv.Filters(cnn)
    fm1 = mv.FeatureMaps(cnn, torch.randn(2, 1, 8, 8))
    fm2 = mv.FeatureMaps(cnn, torch.randn(2, 1, 8, 8), layer="features.4")
    box = ipywidgets.VBox([filters, ipywidgets.HBox([fm1, fm2])])
    state = page_state(mv.export_html(box, tmp_path / "box.html"))
    assert len(state["modules"]) == 2  # Filters' and FeatureMaps' bundles, each once
    assert state["views"][fm1.model_id]["module"] == state["views"][fm2.model_id]["module"]
    composite, row = state["tree"]["children"]
    assert [c["kind"] for c in row["children"]] == ["view", "view"]
    assert composite["children"][0] == {"kind": "view", "id": filters.core.model_id,
                                        "widget": "FiltersCore"}  # fmt: skip
    figures = [c for c in composite["children"][1]["children"] if c["kind"] == "figure"]
    assert figures, "the composite's bqplot figures are missing"
    by_type = {}
    for node in figures:
        for mark in state["figures"][node["id"]]["marks"]:
            by_type[mark["type"]] = mark
    assert {"Scatter", "Bars"} <= set(by_type)
    scatter = next(m for f in filters.figures for m in f.marks if type(m).__name__ == "Scatter")
    np.testing.assert_allclose(by_type["Scatter"]["x"], np.asarray(scatter.x, dtype=float))
    np.testing.assert_allclose(by_type["Scatter"]["y"], np.asarray(scatter.y, dtype=float))


def test_frames_record_each_channel_and_restore_the_view(tmp_path):
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    images = torch.randn(2, 1, 8, 8)
    fm = mv.FeatureMaps(cnn, images, layer="features.4")
    before = model_snapshot(cnn)
    shown = fm.current["channel"].copy()
    path = mv.export_html(fm, tmp_path / "f.html", frames={"channel": range(fm.n_channels)})
    assert_unchanged(cnn, before)
    assert fm.channel == 0
    np.testing.assert_array_equal(fm.current["channel"], shown)
    frames = page_state(path)["frames"][fm.model_id]["channel"]
    assert sorted(frames, key=int) == [str(c) for c in range(8)]
    assert frames["0"]["views"] == {}  # the state as exported: nothing to change
    frame = frames["3"]["views"][fm.model_id]
    assert frame["state"]["channel"] == 3 and "grid_data" not in frame["state"]
    assert {b["path"][0] for b in frame["buffers"]} == {"channel_data"}
    decoded = wire.decode(buffer_of(frame, "channel_data"), frame["state"]["channel_meta"])
    expected = hooked_output(cnn, images, "features.4")[0, 3].numpy()
    meta = frame["state"]["channel_meta"]
    assert np.abs(decoded - expected).max() <= (meta["vmax"] - meta["vmin"]) / 254 / 2 + 1e-6
    # Keyed by the view inside a box, and by the composite for its core.
    filters = mv.Filters(cnn)
    box = ipywidgets.HBox([fm, filters])
    frames_arg = {fm: {"sample": [1]}, filters: {"filter": [2], "layer": ["features.4"]}}
    path = mv.export_html(box, tmp_path / "g.html", frames=frames_arg)
    frames = page_state(path)["frames"]
    assert set(frames[fm.model_id]["sample"]) == {"0", "1"}  # the value shown is one too
    assert set(frames[filters.core.model_id]["filter"]) == {"0", "2"}
    # Another layer redraws the composite's figures too: its scatter has one point per filter.
    frame = frames[filters.core.model_id]["layer"]['"features.4"']
    scatters = [
        mark for figure in frame["figures"].values() for mark in figure["marks"]
        if mark["type"] == "Scatter"
    ]  # fmt: skip
    assert [len(mark["x"]) for mark in scatters] == [8]
    assert filters.core.layer == "features.0" and len(filters.figures[0].marks[0].x) == 6
    assert fm.sample == 0 and filters.core.filter == 0


def test_simple_widgets_are_copied_and_unknown_ones_named(tmp_path):
    tabs = ipywidgets.Tab([ipywidgets.Label("one"), ipywidgets.Output()])
    tabs.titles = ("first", "second")
    controls = ipywidgets.VBox([
        ipywidgets.IntSlider(4, min=1, max=9, description="n"),
        ipywidgets.Dropdown(options=["a", "b"], value="b", description="pick"),
        ipywidgets.ToggleButtons(options=["x", "y"], value="x"),
        ipywidgets.Button(description="go"),
    ])  # fmt: skip
    state = page_state(mv.export_html(ipywidgets.HBox([tabs, controls]), tmp_path / "s.html"))
    tab, column = state["tree"]["children"]
    assert tab["kind"] == "tabs" and tab["titles"] == ["first", "second"]
    assert tab["children"][0] == {"kind": "text", "widget": "Label", "text": "one"}
    assert tab["children"][1]["kind"] == "unknown" and "Output" in tab["children"][1]["widget"]
    slider, dropdown, toggles, button = column["children"]
    assert [slider[k] for k in ("control", "value", "min", "max")] == ["slider", "4", 1, 9]
    assert [dropdown[k] for k in ("control", "options", "selected")] == ["select", ["a", "b"], 1]
    assert (toggles["control"], toggles["selected"]) == ("toggle", 0)
    assert (button["control"], button["value"]) == ("button", "go")


def test_bad_arguments_are_named(tmp_path, monkeypatch):
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    fm = mv.FeatureMaps(cnn, torch.randn(1, 1, 8, 8))
    with pytest.raises(TypeError, match="ipywidgets widget.*got int"):
        mv.export_html(42, tmp_path / "a.html")
    with pytest.raises(ValueError, match="no synced trait 'chanel'.*channel"):
        mv.export_html(fm, tmp_path / "a.html", frames={"chanel": [1]})
    with pytest.raises(ValueError, match="cannot set FeatureMaps.channel to 99"):
        mv.export_html(fm, tmp_path / "a.html", frames={"channel": [99]})
    with pytest.raises(TypeError, match="list of values"):
        mv.export_html(fm, tmp_path / "a.html", frames={"channel": 3})
    other = mv.FeatureMaps(cnn, torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="not part of the exported widget"):
        mv.export_html(fm, tmp_path / "a.html", frames={other: {"channel": [1]}})
    with pytest.raises(TypeError, match="modelviz view"):
        mv.export_html(ipywidgets.VBox([fm]), tmp_path / "a.html", frames={"channel": [1]})
    monkeypatch.setattr(export, "MAX_FRAME_BYTES", 1000)
    with pytest.raises(ValueError, match="frames total more than"):
        mv.export_html(fm, tmp_path / "a.html", frames={"channel": range(6)})
    assert fm.channel == 0 and not (tmp_path / "a.html").exists()


def test_a_frame_that_changes_the_tree_carries_the_new_tree_and_its_views(tmp_path):
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    images = torch.randn(2, 1, 8, 8)
    core = mv.FeatureMaps(cnn, images)
    detail = ipywidgets.VBox([ipywidgets.Label("channel 0")])

    def swap(change: dict[str, Any]) -> None:  # as a composite swaps its detail views
        shown = mv.FeatureMaps(cnn, images, layer="features.4")
        detail.children = [ipywidgets.Label(f"channel {change['new']}"), shown]

    core.observe(swap, "channel")
    state = page_state(mv.export_html(ipywidgets.HBox([core, detail]), tmp_path / "t.html",
                                      frames={core: {"channel": [2]}}))  # fmt: skip
    frames = state["frames"][core.model_id]["channel"]
    assert frames["0"] == {"views": {}, "figures": {}}
    frame = frames["2"]
    label, view = frame["tree"]["children"][1]["children"]
    assert label == {"kind": "text", "widget": "Label", "text": "channel 2"}
    assert view["kind"] == "view" and view["id"] in frame["new_views"]
    entry = frame["new_views"][view["id"]]
    assert entry["state"]["layer"] == "features.4"
    assert state["modules"][entry["module"]] == core._esm  # the same bundle, embedded once
    assert len(state["modules"]) == 1
    assert state["tree"]["children"][1]["children"] == [
        {"kind": "text", "widget": "Label", "text": "channel 0"}
    ]


def test_a_bqplot_hist_is_binned_into_bars(tmp_path):
    import bqplot

    sample = np.array([0.0, 0.1, 0.2, 0.9, 1.0, np.nan])
    scales = {"sample": bqplot.LinearScale(), "count": bqplot.LinearScale()}
    hist = bqplot.Hist(sample=sample, bins=2, scales=scales)
    figure = bqplot.Figure(marks=[hist], axes=[bqplot.Axis(scale=scales["sample"])], title="h")
    state = page_state(mv.export_html(figure, tmp_path / "h.html"))
    (mark,) = state["figures"][figure.model_id]["marks"]
    assert mark["type"] == "Bars" and mark["y"] == [3.0, 2.0]  # counted by hand: NaN left out
    assert mark["x"] == [0.25, 0.75]
    assert mark["scales"] == {"x": scales["sample"].model_id, "y": scales["count"].model_id}
