"""ActivationFunctions in a real JupyterLab: notebooks/03_filters_and_probes.ipynb run in Chromium,
its first ActivationFunctions (`act`) drawn; the function, derivative and layer controls redraw the
bqplot figure (data-mv-seq advances, the marks change) and Python's traits follow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jupyter import REPO_ROOT, LabSession, Notebook, WidgetView, unexplained_errors

pytestmark = pytest.mark.browser

NOTEBOOK = Path(REPO_ROOT) / "notebooks" / "03_filters_and_probes.ipynb"

# What the bqplot marks of the composite look like now: per svg, each drawn shape's geometry and
# opacity (lines: path `d`; bars: rect heights; dots: transforms).
MARKS_JS = """
(root) => {
  const box = root.closest('.mvz-composite');
  if (!box) return null;
  const figures = Array.from(box.querySelectorAll('.bqplot'));
  return figures.map(figure => Array.from(figure.querySelectorAll('svg path, svg rect'))
    .filter(el => !el.closest('.axis, defs, .legend, clipPath'))
    .filter(el => !(el.getAttribute('class') || '').startsWith('plotarea'))
    .map(el => [
      el.tagName, el.getAttribute('class') || '', el.getAttribute('d') || '',
      el.getAttribute('height') || '', el.getAttribute('transform') || '',
      getComputedStyle(el).opacity, getComputedStyle(el).visibility,
      el.getClientRects().length > 0 ? 'shown' : 'hidden',
    ]));
}
"""


class View(WidgetView):
    def __init__(self, notebook: Notebook, widget: str, python_name: str) -> None:
        super().__init__(notebook, notebook.widget_root(widget, 0), python_name)

    def marks(self) -> list[list[list[str]]]:
        """Per bqplot figure of the composite, its drawn shapes."""
        marks = self.root.evaluate(MARKS_JS)
        assert marks is not None, "the view is not inside its composite box"
        return list(marks)

    def marks_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.marks()).encode()).hexdigest()

    def wait_marks_change(self, before: str, timeout: float = 10.0) -> str:
        """bqplot redraws after its own messages arrive: poll until the marks differ."""
        page = self.notebook.page
        for _ in range(int(timeout * 10)):
            now = self.marks_hash()
            if now != before:
                return now
            page.wait_for_timeout(100)
        raise AssertionError("the bqplot marks did not change")


@pytest.fixture(scope="module")
def notebook(lab: LabSession) -> Iterator[Notebook]:
    yield lab.run_notebook(NOTEBOOK)


@pytest.fixture(scope="module")
def act(notebook: Notebook) -> View:
    view = View(notebook, "ActivationFunctions", "act")
    notebook.wait_ready(view.root, timeout=60)
    assert view.python("type({w}).__name__") == "ActivationFunctions"
    return view


def test_renders_ready_with_curves_and_histogram(act: View) -> None:
    assert act.root.get_attribute("data-mv-state") == "ready"
    assert act.seq() >= 1
    svgs = act.marks()
    assert len(svgs) == 1, f"expected one bqplot figure with marks, got {len(svgs)}"
    shapes = svgs[0]
    kinds = sorted({f"{s[0]}.{s[1]}" for s in shapes})
    lines = [s for s in shapes if s[0] == "path" and s[2]]
    bars = [s for s in shapes if s[0] == "rect" and "bar" in s[1]]
    assert len(lines) >= 12, (
        f"6 curves and 6 derivatives expected, got {len(lines)} paths; shapes: {kinds}"
    )
    assert any(float(s[3] or 0) > 0 for s in bars), (
        f"the histogram has no visible bar; shapes: {kinds}"
    )
    assert act.python("repr({w}.error)") == "''"
    assert act.control("layer").input_value() == act.python("{w}.layer")
    assert act.control("function").input_value() == act.python("{w}.function") == "relu"
    summary = act.root.locator(".mvz-summary").inner_text()
    assert "dead region" in summary and "%" in summary


def test_function_select_redraws_and_python_follows(act: View) -> None:
    before_seq, before_marks = act.seq(), act.marks_hash()
    try:
        act.control("function").select_option(value="tanh")
        act.notebook.wait_seq_after(act.root, before_seq, timeout=10)
        act.wait_marks_change(before_marks)
        assert act.python("{w}.function") == "tanh"
        assert "saturated region" in act.root.locator(".mvz-summary").inner_text()
    finally:
        before = act.seq()
        act.control("function").select_option(value="relu")
        act.notebook.wait_seq_after(act.root, before, timeout=10)


def test_derivative_toggle_and_layer_select(act: View) -> None:
    before_seq, before_marks = act.seq(), act.marks_hash()
    act.control("show_derivative").click()
    act.notebook.wait_seq_after(act.root, before_seq, timeout=10)
    act.wait_marks_change(before_marks)
    assert act.python("{w}.show_derivative") == "False"
    before = act.seq()
    act.control("show_derivative").click()
    act.notebook.wait_seq_after(act.root, before, timeout=10)
    assert act.python("{w}.show_derivative") == "True"

    options = act.control("layer").evaluate("(s) => Array.from(s.options).map(o => o.value)")
    original = act.control("layer").input_value()
    target = next(name for name in options if name != original)
    before_seq, before_marks = act.seq(), act.marks_hash()
    try:
        act.control("layer").select_option(value=target)
        act.notebook.wait_seq_after(act.root, before_seq, timeout=30)
        act.wait_marks_change(before_marks)
        assert act.python("{w}.layer") == target
        assert target in act.root.locator(".mvz-summary").inner_text()
    finally:
        before = act.seq()
        act.control("layer").select_option(value=original)
        act.notebook.wait_seq_after(act.root, before, timeout=30)


def test_python_change_reaches_the_view(act: View) -> None:
    before = act.seq()
    act.notebook.ask(f"{act.python_name}.function = 'silu'")
    act.notebook.wait_seq_after(act.root, before, timeout=10)
    assert act.control("function").input_value() == "silu"
    before = act.seq()
    act.notebook.ask(f"{act.python_name}.function = 'relu'")
    act.notebook.wait_seq_after(act.root, before, timeout=10)


def test_no_errors_in_outputs_or_console(notebook: Notebook, lab: LabSession) -> None:
    notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
