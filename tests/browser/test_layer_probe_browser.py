"""LayerProbe in a real JupyterLab: notebooks/03_filters_and_probes.ipynb run in Chromium, its
first LayerProbe (`probe`) drawn after its background fit; the estimator select refits (progress,
data-mv-seq, the bars change) and a click on a bar selects that layer in Python and redraws the
scatter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .jupyter import LabSession, Notebook, unexplained_errors
from .test_activation_functions_browser import NOTEBOOK, View

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def notebook(lab: LabSession) -> Iterator[Notebook]:
    yield lab.run_notebook(NOTEBOOK)


@pytest.fixture(scope="module")
def probe(notebook: Notebook) -> View:
    view = View(notebook, "LayerProbe", "probe")
    notebook.wait_ready(view.root, timeout=120)  # "ready" only once every probe is fitted
    assert view.python("type({w}).__name__") == "LayerProbe"
    return view


def bar_heights(view: View) -> list[float]:
    bars = [shape for shape in view.marks()[0] if shape[0] == "rect" and "bar" in shape[1]]
    return [float(shape[3] or 0) for shape in bars]


def test_renders_ready_with_bars_scatter_and_progress(probe: View) -> None:
    assert probe.root.get_attribute("data-mv-state") == "ready"
    assert probe.seq() >= 1
    n_layers = int(probe.python("len({w}.layers)"))
    heights = bar_heights(probe)
    assert len(heights) == n_layers and all(h > 0 for h in heights), heights
    dots = [shape for shape in probe.marks()[1] if "dot" in shape[1]]
    assert len(dots) == int(probe.python("len({w}.current['points'])")) > 0
    assert probe.root.locator("progress").evaluate("(p) => p.value") == 1
    assert probe.control("layer").input_value() == probe.python("{w}.layer")
    assert probe.python("repr({w}.error)") == "''"
    assert "held out" in probe.root.locator(".mvz-summary").inner_text()


def test_estimator_select_refits_and_python_follows(probe: View) -> None:
    before_seq, before_marks = probe.seq(), probe.marks_hash()
    try:
        probe.control("estimator").select_option(value="tree")
        probe.notebook.wait_seq_after(probe.root, before_seq, timeout=30)
        probe.notebook.wait_ready(probe.root, timeout=120)
        probe.wait_marks_change(before_marks, timeout=20)
        assert probe.python("{w}.estimator") == "tree"
        assert probe.python("{w}.progress") == "1.0"
        assert "tree probes" in probe.root.locator(".mvz-summary").inner_text()
    finally:
        before = probe.seq()
        probe.control("estimator").select_option(value="logistic")
        probe.notebook.wait_seq_after(probe.root, before, timeout=30)
        probe.notebook.wait_ready(probe.root, timeout=120)


def test_bar_click_selects_the_layer(probe: View) -> None:
    layers = probe.python("','.join({w}.layers)").split(",")
    current = probe.python("{w}.layer")
    target = 0 if layers.index(current) != 0 else 1
    before_seq, before_marks = probe.seq(), probe.marks_hash()
    probe.root.locator("xpath=ancestor::*[contains(@class,'mvz-composite')][1]").locator(
        ".bqplot rect.bar"
    ).nth(target).click()
    probe.notebook.wait_seq_after(probe.root, before_seq, timeout=30)
    probe.wait_marks_change(before_marks, timeout=20)
    assert probe.python("{w}.layer") == layers[target]
    assert probe.control("layer").input_value() == layers[target]
    assert layers[target] in probe.root.locator(".mvz-summary").inner_text()


def test_no_errors_in_outputs_or_console(notebook: Notebook, lab: LabSession) -> None:
    notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
