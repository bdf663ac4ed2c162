"""FeatureMaps in a real JupyterLab: notebooks/01_feature_maps.ipynb run in Chromium, its first
widget (`fm`) drawn, its controls moved, the canvases seen to change and Python seen to follow."""

from __future__ import annotations

import pytest

from .drivers import FeatureMapsView
from .jupyter import LabSession, Notebook, unexplained_errors

pytestmark = pytest.mark.browser


def python_int(view: FeatureMapsView, trait: str) -> int:
    return int(view.python(f"{{w}}.{trait}"))


def test_notebook_runs_without_error_outputs(fm_notebook: Notebook) -> None:
    fm_notebook.assert_no_error_outputs()


def test_feature_maps_renders(fm_view: FeatureMapsView) -> None:
    assert fm_view.root.get_attribute("data-mv-state") == "ready"
    assert fm_view.seq() >= 1, "data-mv-seq should carry the seq of a drawn payload"
    pictures = fm_view.pictures()
    for role in ("grid", "channel"):
        assert not pictures[role].blank, f"the {role} canvas is blank: {pictures[role]}"
    assert fm_view.python("repr({w}.error)") == "''"

    channel = fm_view.control("channel")
    assert channel.evaluate("(el) => el.tagName === 'INPUT' && el.type === 'range'")
    assert fm_view.channel_value() == python_int(fm_view, "channel")
    low, high = fm_view.channel_bounds()
    assert (low, high) == (0, python_int(fm_view, "n_channels") - 1)
    layer = fm_view.control("layer")
    assert layer.evaluate("(el) => el.tagName === 'SELECT'")
    assert layer.input_value() == fm_view.python("{w}.layer")


def test_channel_keyboard_redraws_and_python_follows(fm_view: FeatureMapsView) -> None:
    start = fm_view.channel_value()
    before_pictures = fm_view.pictures()
    before_seq = fm_view.seq()

    sample = fm_view.step_channel(timeout=5)

    assert sample.ms is not None, f"no redraw after the key press: {sample.detail}"
    assert fm_view.seq() > before_seq
    moved = fm_view.channel_value()
    assert abs(moved - start) == 1
    after_pictures = fm_view.pictures()
    assert after_pictures["channel"].hash != before_pictures["channel"].hash, (
        "the channel canvas did not change"
    )
    assert not after_pictures["channel"].blank
    assert python_int(fm_view, "channel") == moved


def test_channel_set_value_with_input_event(fm_view: FeatureMapsView) -> None:
    """Scripted change (value + input/change events), as a drag would produce: Python follows."""
    low, high = fm_view.channel_bounds()
    target = high if fm_view.channel_value() != high else low
    before_hash = fm_view.pictures()["channel"].hash
    before_seq = fm_view.seq()
    fm_view.control("channel").evaluate(
        """(el, value) => { el.value = String(value);
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        target,
    )
    fm_view.notebook.wait_seq_after(fm_view.root, before_seq, timeout=5)
    assert python_int(fm_view, "channel") == target
    assert fm_view.pictures()["channel"].hash != before_hash


def test_python_set_after_a_browser_set_reaches_the_view(fm_view: FeatureMapsView) -> None:
    """Selections skip ipywidgets' echo message (one message less per move); a later change made
    in Python must still reach the controls and the canvas."""
    fm_view.step_channel(timeout=5)  # the browser sets the channel first
    low, high = fm_view.channel_bounds()
    target = low if fm_view.channel_value() != low else high
    before_seq = fm_view.seq()
    fm_view.notebook.ask(f"{fm_view.python_name}.channel = {target}")
    fm_view.notebook.wait_seq_after(fm_view.root, before_seq, timeout=5)
    assert fm_view.channel_value() == target
    assert fm_view.root.get_attribute("data-mv-state") == "ready"


def test_layer_select_redraws_and_python_follows(fm_view: FeatureMapsView) -> None:
    original = fm_view.control("layer").input_value()
    options = fm_view.layer_options()
    assert original in options and len(options) >= 2, f"layer options: {options}"
    target = next(name for name in options if name != original)
    before = fm_view.pictures()
    try:
        fm_view.set_layer(target, timeout=30)
        after = fm_view.pictures()
        assert fm_view.python("{w}.layer") == target
        assert after["grid"].hash != before["grid"].hash, "the grid canvas did not change"
        assert after["channel"].hash != before["channel"].hash, "the channel canvas did not change"
        assert not after["grid"].blank
        n_channels = python_int(fm_view, "n_channels")
        assert fm_view.channel_bounds() == (0, n_channels - 1)
        assert fm_view.channel_value() == python_int(fm_view, "channel")
    finally:
        if fm_view.control("layer").input_value() != original:
            fm_view.set_layer(original, timeout=30)
    assert fm_view.python("{w}.layer") == original


def test_layer_select_keyboard(fm_view: FeatureMapsView) -> None:
    """Arrow keys on the focused layer drop-down pick the next layer, as in any web page."""
    original = fm_view.control("layer").input_value()
    options = fm_view.layer_options()
    try:
        sample = fm_view.step_layer((options[0], options[1]), timeout=5)
        assert sample.ms is not None, f"no redraw after the key press: {sample.detail}"
        assert fm_view.python("{w}.layer") == fm_view.control("layer").input_value() == options[1]
    finally:
        if fm_view.control("layer").input_value() != original:
            fm_view.set_layer(original, timeout=30)


def test_grid_click_selects_channel(fm_view: FeatureMapsView) -> None:
    n_channels = python_int(fm_view, "n_channels")
    current = python_int(fm_view, "channel")
    assert n_channels >= 2, "the demo layer should have several channels"
    target = (current + max(1, n_channels // 2)) % n_channels
    before_hash = fm_view.pictures()["channel"].hash

    fm_view.click_grid_cell(target, n_channels, timeout=10)

    assert python_int(fm_view, "channel") == target
    assert fm_view.channel_value() == target
    assert fm_view.pictures()["channel"].hash != before_hash


def test_no_errors_in_outputs_or_console(fm_notebook: Notebook, lab: LabSession) -> None:
    fm_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)  # let Playwright deliver console events still in flight
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
