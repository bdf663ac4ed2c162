"""Saliency in a real JupyterLab: notebooks/02_saliency.ipynb run in Chromium, its first widget
(`sal`) drawn; a slow attribution computed in the kernel's worker thread is seen to reach the view,
a method change and a target click redraw, and Python follows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .jupyter import REPO_ROOT, LabSession, Notebook, WidgetView, drawn, unexplained_errors

pytestmark = pytest.mark.browser

# MV_SAL_NOTEBOOK points the tests at another notebook whose first Saliency is named `sal`.
SALIENCY_NOTEBOOK = Path(
    os.environ.get("MV_SAL_NOTEBOOK", REPO_ROOT / "notebooks" / "02_saliency.ipynb")
)


class SaliencyView(WidgetView):
    """The first Saliency root of the notebook (Python name ``sal``)."""

    def __init__(self, notebook: Notebook, python_name: str = "sal") -> None:
        super().__init__(notebook, notebook.widget_root("Saliency", 0), python_name)

    def class_rows(self) -> list[int]:
        rows = self.root.locator(
            '[data-mv-control="target"][data-mv-class]:not([data-mv-class=""])'
        )
        return [int(rows.nth(i).get_attribute("data-mv-class") or -1) for i in range(rows.count())]


@pytest.fixture(scope="module")
def sal_notebook(lab: LabSession) -> Notebook:
    return lab.run_notebook(SALIENCY_NOTEBOOK)


@pytest.fixture(scope="module")
def sal_view(sal_notebook: Notebook) -> SaliencyView:
    view = SaliencyView(sal_notebook)
    view.root.scroll_into_view_if_needed()
    sal_notebook.wait_ready(view.root, timeout=60)
    assert view.python("type({w}).__name__") == "Saliency", "`sal` is not a Saliency"
    return view


def test_notebook_runs_without_error_outputs(sal_notebook: Notebook) -> None:
    sal_notebook.assert_no_error_outputs()


def test_saliency_renders(sal_view: SaliencyView) -> None:
    assert sal_view.root.get_attribute("data-mv-state") == "ready"
    assert sal_view.seq() >= 1
    canvases = sal_view.canvases()
    for part in ("input", "attribution", "overlay"):
        assert part in canvases and drawn(canvases[part]), f"{part} canvas: {canvases.get(part)}"
    assert sal_view.python("repr({w}.error)") == "''"
    assert sal_view.control("method").input_value() == sal_view.python("{w}.method")
    assert len(sal_view.class_rows()) == int(sal_view.python("len({w}.predictions)")) == 5
    cost = sal_view.root.locator('[data-mv-part="cost"]').inner_text()
    assert "s" in cost and "samples through the model" in cost, cost


def test_slow_job_in_the_worker_thread_reaches_the_view(sal_view: SaliencyView) -> None:
    """A multi-second Integrated Gradients run (20,000 steps, ~4 s), started from the browser while
    the kernel is idle, computes in the widget's worker thread; its progress and its result must
    reach the page. (Riemann steps: Gauss-Legendre nodes for that many steps take minutes.)"""
    notebook = sal_view.notebook
    w = sal_view.python_name
    notebook.ask(
        f"{w}.method = 'saliency'; {w}.options = dict({w}.options, steps=20000, "
        f"internal_batch_size=8, quadrature='riemann_trapezoid'); {w}.wait(); print('ok')"
    )
    before = sal_view.seq()
    before_hash = sal_view.canvases()["attribution"]["hash"]
    sal_view.control("method").select_option(value="integrated_gradients")
    progress = sal_view.root.locator('[data-mv-part="progress"]')
    progress.wait_for(state="visible", timeout=15_000)  # progress drawn while the job runs
    assert sal_view.root.get_attribute("data-mv-state") == "loading"
    notebook.wait_seq_after(sal_view.root, before, timeout=120)
    assert progress.is_hidden()
    assert sal_view.canvases()["attribution"]["hash"] != before_hash
    assert sal_view.python("{w}.attribution_meta['method']") == "integrated_gradients"
    assert float(sal_view.python("{w}.cost['seconds']")) > 1.0
    assert sal_view.python("{w}.busy") == "False"


def test_method_change_redraws_and_python_follows(sal_view: SaliencyView) -> None:
    target = "grad_x_input" if sal_view.python("{w}.method") != "grad_x_input" else "saliency"
    before = sal_view.seq()
    before_hash = sal_view.canvases()["attribution"]["hash"]
    sal_view.control("method").select_option(value=target)
    sal_view.notebook.wait_seq_after(sal_view.root, before, timeout=60)
    assert sal_view.python("{w}.method") == target
    assert sal_view.python("{w}.attribution_meta['method']") == target
    assert sal_view.canvases()["attribution"]["hash"] != before_hash


def test_target_click_redraws_and_python_follows(sal_view: SaliencyView) -> None:
    explained = int(sal_view.python("{w}.explained_target"))
    other = next(c for c in sal_view.class_rows() if c != explained)
    before = sal_view.seq()
    before_hash = sal_view.canvases()["attribution"]["hash"]
    sal_view.root.locator(f'[data-mv-control="target"][data-mv-class="{other}"]').click()
    sal_view.notebook.wait_seq_after(sal_view.root, before, timeout=60)
    assert int(sal_view.python("{w}.target")) == other
    assert int(sal_view.python("{w}.explained_target")) == other
    pressed = sal_view.root.locator(f'[data-mv-class="{other}"]').get_attribute("aria-pressed")
    assert pressed == "true"
    assert sal_view.canvases()["attribution"]["hash"] != before_hash


def test_blend_is_applied_in_the_browser(sal_view: SaliencyView) -> None:
    before = sal_view.seq()
    overlay_hash = sal_view.canvases()["overlay"]["hash"]
    sal_view.control("blend").evaluate(
        """(el) => { el.value = '0.1';
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true})); }"""
    )
    sal_view.page.wait_for_timeout(100)
    assert sal_view.canvases()["overlay"]["hash"] != overlay_hash
    assert sal_view.seq() == before  # nothing recomputed
    assert abs(float(sal_view.python("{w}.blend")) - 0.1) < 1e-9


def test_no_errors_in_outputs_or_console(sal_notebook: Notebook, lab: LabSession) -> None:
    sal_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
