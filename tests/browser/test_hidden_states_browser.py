"""HiddenStates in a real JupyterLab: notebooks/04_recurrent.ipynb run in Chromium, its first
widget (`hs`, a bidirectional LSTM on a sentence) drawn; the timestep slider moved by keyboard and
by script, the highlight and the step view seen to redraw, Python seen to follow; a drag selects
the pattern range; tokens holding markup render as literal text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .jupyter import REPO_ROOT, LabSession, Notebook, WidgetView, drawn, unexplained_errors

pytestmark = pytest.mark.browser

# MV_HS_NOTEBOOK points the tests at another notebook whose first HiddenStates is named `hs`.
RECURRENT_NOTEBOOK = Path(
    os.environ.get("MV_HS_NOTEBOOK", REPO_ROOT / "notebooks" / "04_recurrent.ipynb")
)
HOSTILE = "<img src=x onerror=alert(1)>"
WORDS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]


class HiddenStatesView(WidgetView):
    """One HiddenStates root of the notebook and the Python name of its widget."""

    def axis_labels(self, direction: int = 0) -> list[str]:
        axis = self.root.locator('[data-mv-part="tokens"]').nth(direction)
        return [str(text) for text in axis.locator("span").all_text_contents()]

    def timestep(self) -> int:
        return int(self.control("timestep").input_value())


@pytest.fixture(scope="module")
def hs_notebook(lab: LabSession) -> Notebook:
    return lab.run_notebook(RECURRENT_NOTEBOOK)


@pytest.fixture(scope="module")
def hs_view(hs_notebook: Notebook) -> HiddenStatesView:
    view = HiddenStatesView(hs_notebook, hs_notebook.widget_root("HiddenStates", 0), "hs")
    view.root.scroll_into_view_if_needed()
    hs_notebook.wait_ready(view.root, timeout=60)
    assert view.python("type({w}).__name__") == "HiddenStates", "`hs` is not a HiddenStates"
    return view


def test_notebook_runs_without_error_outputs(hs_notebook: Notebook) -> None:
    hs_notebook.assert_no_error_outputs()


def test_hidden_states_renders(hs_view: HiddenStatesView) -> None:
    assert hs_view.root.get_attribute("data-mv-state") == "ready"
    assert hs_view.seq() >= 1
    canvases = hs_view.canvases()
    for part in ("forward", "backward", "step"):
        assert part in canvases and drawn(canvases[part]), f"{part} canvas: {canvases.get(part)}"
    assert hs_view.python("repr({w}.error)") == "''"
    assert hs_view.axis_labels(0) == WORDS and hs_view.axis_labels(1) == WORDS
    attribution = hs_view.root.locator('[data-mv-part="attribution"] span').all_text_contents()
    assert attribution == WORDS
    slider = hs_view.control("timestep")
    assert slider.evaluate("(el) => el.tagName === 'INPUT' && el.type === 'range'")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "8")
    assert hs_view.timestep() == int(hs_view.python("{w}.timestep"))
    for trait in ("layer", "direction", "quantity", "target"):
        assert hs_view.control(trait).count() == 1, f"no {trait} control"
    assert hs_view.control("quantity").input_value() == hs_view.python("{w}.quantity")


def test_timestep_keyboard_redraws_and_python_follows(hs_view: HiddenStatesView) -> None:
    start = hs_view.timestep()
    before = hs_view.canvases()
    before_seq = hs_view.seq()
    key = "ArrowRight" if start < 8 else "ArrowLeft"
    sample = hs_view.notebook.key_to_seq(hs_view.control("timestep"), hs_view.root, key, 5)
    assert sample.ms is not None, f"no redraw after the key press: {sample.detail}"
    assert hs_view.seq() > before_seq
    moved = hs_view.timestep()
    assert abs(moved - start) == 1
    after = hs_view.canvases()
    for part in ("forward", "backward", "step"):
        assert after[part]["hash"] != before[part]["hash"], f"the {part} canvas did not change"
    assert int(hs_view.python("{w}.timestep")) == moved
    title = hs_view.root.locator(".mvz-title", has_text="step ").first.inner_text()
    assert title == f"step {moved}: {WORDS[moved]}"


def test_timestep_scripted_change_redraws_and_python_follows(hs_view: HiddenStatesView) -> None:
    target = 8 if hs_view.timestep() != 8 else 0
    before = hs_view.canvases()
    before_seq = hs_view.seq()
    hs_view.control("timestep").evaluate(
        """(el, value) => { el.value = String(value);
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        target,
    )
    hs_view.notebook.wait_seq_after(hs_view.root, before_seq, timeout=10)
    assert int(hs_view.python("{w}.timestep")) == target
    after = hs_view.canvases()
    assert after["forward"]["hash"] != before["forward"]["hash"]
    assert after["step"]["hash"] != before["step"]["hash"]
    assert hs_view.python("{w}.step_meta['timestep']") == str(target)


def test_drag_over_the_grid_selects_the_pattern_range(hs_view: HiddenStatesView) -> None:
    canvas = hs_view.root.locator('canvas[data-mv-part="forward"]')
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    cell = box["width"] / 9
    y = box["y"] + box["height"] / 2
    before_seq = hs_view.seq()
    mouse = hs_view.page.mouse
    mouse.move(box["x"] + 2.5 * cell, y)
    mouse.down()
    mouse.move(box["x"] + 5.5 * cell, y, steps=4)
    mouse.up()
    hs_view.notebook.wait_seq_after(hs_view.root, before_seq, timeout=10)
    assert hs_view.python("({w}.pattern_start, {w}.pattern_end)") == "(2, 5)"
    assert hs_view.control("pattern_start").input_value() == "2"
    units_text = hs_view.root.locator('[data-mv-part="pattern-units"]').inner_text()
    assert units_text and units_text != "no range selected"


def test_tokens_with_markup_render_as_literal_text(hs_view: HiddenStatesView) -> None:
    dialogs: list[str] = []
    page = hs_view.page

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    words = [*WORDS[:1], HOSTILE, *WORDS[2:]]
    hs_view.notebook.run_cell(
        f"hostile = mv.HiddenStates(sentence_model, token_ids, tokens={words!r})\nhostile"
    )
    roots = hs_view.notebook.page.locator('[data-mv-widget="HiddenStates"]')
    view = HiddenStatesView(hs_view.notebook, roots.nth(roots.count() - 1), "hostile")
    view.root.scroll_into_view_if_needed()
    hs_view.notebook.wait_ready(view.root, timeout=60)
    assert view.root.locator("img").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    assert view.axis_labels(0)[1] == HOSTILE
    literal = view.root.locator('[data-mv-part="attribution"] span').nth(1)
    assert literal.text_content() == HOSTILE and literal.is_visible()
    page.wait_for_timeout(300)
    # Later tests navigate the same page; a listener left here would dismiss their unload prompts.
    page.remove_listener("dialog", record)
    assert dialogs == [], f"a token's markup ran: {dialogs}"
    view.python("{w}.close()")


def test_no_errors_in_outputs_or_console(hs_notebook: Notebook, lab: LabSession) -> None:
    hs_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
