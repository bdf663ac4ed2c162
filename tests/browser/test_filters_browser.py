"""Filters in a real JupyterLab: a notebook written here (the demo photo CNN, whose first layer
is drawn as RGB, and the digits CNN) run in Chromium; the layer and sort controls redraw the grid
and Python follows; the bqplot projection scatter is in the page with one dot per filter."""

from __future__ import annotations

from ast import literal_eval
from collections.abc import Iterator
from typing import Any

import pytest

from .jupyter import (
    CANVAS_STATS_JS,
    LabSession,
    Notebook,
    WidgetView,
    drawn,
    unexplained_errors,
    write_notebook,
)

pytestmark = pytest.mark.browser

CELLS = [
    "import modelviz_widgets as mv",
    "photo = mv.demo.photo_cnn()\nflt = mv.Filters(photo)\nflt",
    'digits = mv.demo.digits_cnn()\ndflt = mv.Filters(digits, layer="features.conv2")\ndflt',
]

# The grid is the canvas of the filter grid; the filter picture is the heatmap's canvas.
ROLES_JS = """
(root) => Array.from(root.querySelectorAll('canvas')).map(c =>
  c.closest('.mvz-colorbar') ? 'colorbar' : c.closest('.mvz-mosaic') ? 'grid'
  : c.closest('.mvz-heatmap') ? 'filter' : 'other')
"""

DOTS_JS = """
(root) => {
  const box = root.closest('.mvz-composite');
  if (!box) return {svgs: -1, dots: []};
  const svgs = Array.from(box.querySelectorAll('svg'));
  return {svgs: svgs.length, dots: svgs.map(svg => svg.querySelectorAll('.dot').length)};
}
"""


class FiltersView(WidgetView):
    def __init__(self, notebook: Notebook, nth: int, python_name: str) -> None:
        super().__init__(notebook, notebook.widget_root("Filters", nth), python_name)

    def pictures(self) -> dict[str, dict[str, Any]]:
        roles = self.root.evaluate(ROLES_JS)
        stats = self.root.evaluate(CANVAS_STATS_JS)
        return {
            role: stat
            for role, stat in zip(roles, stats, strict=True)
            if role in ("grid", "filter")
        }

    def choose(self, trait: str, value: str, timeout: float = 30.0) -> int:
        before = self.seq()
        self.control(trait).select_option(value=value)
        return self.notebook.wait_seq_after(self.root, before, timeout)


@pytest.fixture(scope="module")
def filters_notebook(lab: LabSession) -> Iterator[Notebook]:
    yield lab.run_notebook(write_notebook(lab.server.root_dir / "filters_browser.ipynb", CELLS))


@pytest.fixture(scope="module")
def photo_view(filters_notebook: Notebook) -> FiltersView:
    view = FiltersView(filters_notebook, nth=0, python_name="flt")
    filters_notebook.wait_ready(view.root, timeout=60)
    return view


def test_both_views_render_ready_with_pictures(filters_notebook: Notebook, photo_view) -> None:
    digits = FiltersView(filters_notebook, nth=1, python_name="dflt")
    for view in (photo_view, digits):
        filters_notebook.wait_ready(view.root, timeout=60)
        assert view.seq() >= 1
        pictures = view.pictures()
        assert drawn(pictures["grid"]) and drawn(pictures["filter"]), pictures
        assert view.python("repr({w}.error)") == "''"
    # The photo CNN's first layer has 3 input channels: RGB, no input-channel slider shown.
    assert photo_view.python("{w}.core.rgb") == "True"
    assert not photo_view.control("input_channel").is_visible()
    assert digits.control("input_channel").is_visible()


def test_layer_change_redraws_and_python_follows(photo_view: FiltersView) -> None:
    before_seq = photo_view.seq()
    before = photo_view.pictures()
    assert photo_view.control("layer").input_value() == photo_view.python("{w}.layer")
    after_seq = photo_view.choose("layer", "features.conv2")
    assert after_seq > before_seq
    after = photo_view.pictures()
    assert after["grid"]["hash"] != before["grid"]["hash"]
    assert drawn(after["grid"])
    assert photo_view.python("{w}.layer") == "features.conv2"
    assert photo_view.python("{w}.core.rgb") == "False"
    assert photo_view.control("input_channel").is_visible()


def test_sort_change_redraws_and_python_follows(photo_view: FiltersView) -> None:
    before_seq = photo_view.seq()
    before = photo_view.pictures()
    target = "norm" if photo_view.python("{w}.sort") == "index" else "index"
    assert photo_view.choose("sort", target) > before_seq
    assert photo_view.pictures()["grid"]["hash"] != before["grid"]["hash"]
    assert photo_view.python("{w}.sort") == target
    order = literal_eval(photo_view.python("{w}.current['order'].astype(int).tolist()"))
    by_norm = literal_eval(
        photo_view.python(
            "__import__('torch').argsort(__import__('torch').linalg.vector_norm("
            "{w}.core.module.weight.detach().flatten(1), dim=1), descending=True, stable=True)"
            ".tolist()"
        )
    )
    expected = by_norm if target == "norm" else sorted(by_norm)
    assert order == expected


def test_projection_scatter_has_one_dot_per_filter(photo_view: FiltersView) -> None:
    n_filters = int(photo_view.python("{w}.core.n_filters"))
    page = photo_view.notebook.page
    page.wait_for_function(
        f"(root) => ({DOTS_JS})(root).dots.includes({n_filters})",
        arg=photo_view.root.element_handle(), timeout=30_000, polling=200,
    )  # fmt: skip
    found = photo_view.root.evaluate(DOTS_JS)
    assert found["svgs"] >= 3, found  # the scatter and two histograms
    assert n_filters in found["dots"], found


def test_hovering_a_dot_names_the_filter_and_clicking_selects_it(
    filters_notebook: Notebook,
) -> None:
    view = FiltersView(filters_notebook, nth=1, python_name="dflt")
    filters_notebook.wait_ready(view.root, timeout=60)
    page = filters_notebook.page
    # Ask the kernel first: each question appends a cell, which can scroll the page.
    expected = int(view.python("int({w}.current['projection'][:, 0].argmin())"))
    norm = float(view.python(f"float({{w}}.current['norms'][{expected}])"))
    box = view.root.locator("xpath=ancestor::*[contains(@class, 'mvz-composite')][1]")
    box.scroll_into_view_if_needed()
    page.wait_for_function(
        "(box) => box.querySelectorAll('.dot').length > 0", arg=box.element_handle()
    )
    dots = box.locator(".dot")
    boxes = [dots.nth(i).bounding_box() for i in range(dots.count())]
    # The leftmost dot, so no other dot covers it.
    leftmost = min(boxes, key=lambda b: b["x"])
    x, y = leftmost["x"] + leftmost["width"] / 2, leftmost["y"] + leftmost["height"] / 2
    page.mouse.move(x, y, steps=3)
    tooltip = page.locator(".bqplot_mark_tooltip").filter(has_text="norm").filter(visible=True)
    tooltip.first.wait_for(state="visible", timeout=10_000)
    text = " ".join(tooltip.first.inner_text().split())
    assert f"filter {expected}" in text and f"norm {norm:.4g}" in text, text
    before = view.seq()
    page.mouse.click(x, y)
    filters_notebook.wait_seq_after(view.root, before, timeout=10)
    assert int(view.python("{w}.filter")) == expected
    assert int(view.control("filter").input_value()) == expected


def test_no_errors_in_outputs_or_console(filters_notebook: Notebook, lab: LabSession) -> None:
    filters_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
