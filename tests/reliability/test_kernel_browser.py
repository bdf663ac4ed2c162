"""Kernel restart and notebook reload in a real JupyterLab.

A restart kills the Python side of every widget (and with it every hook) but leaves the views on the
page: peers showed stale views that silently stopped reacting (ipython/ipython#7227 added a
dead-comm cue for this), "re-run the cell" ghost hooks (meta-pytorch/captum#834,
jacobgil/pytorch-grad-cam#132) and "Error displaying widget: model not found" after reopening
(jupyter-widgets/ipywidgets#2494, #3823). The promises:

* a view whose kernel restarted (or died: the server restarts it) says so in a line of its own
  (js/src/lib/connection.ts, wired into every view by createShell), reads
  ``data-mv-state="error"`` and ``data-mv-kernel="gone"`` and disables its controls, instead of a
  box that no longer answers;
* re-running the cells in the new kernel gives a working view and a model without hooks, after the
  view is up and after it captured again;
* reloading the page re-renders the live view from the kernel; outputs of widgets from the old
  kernel show JupyterLab's own "model not found" text (widget state is not saved by default), never
  a blank box.

These tests run after the other browser tests of this directory (conftest orders them): the restart
ends every widget of the shared notebook.
"""

from __future__ import annotations

import pytest

from tests.browser.jupyter import LabSession, Notebook, unexplained_errors
from tests.browser.page_scripts import KERNEL_STATE_JS

from .conftest import FEATURE_MAPS, SETUP

pytestmark = pytest.mark.browser

RESTART_JS = """
async (path) => {
  const panel = Array.from(window.jupyterapp.shell.widgets('main'))
    .find(w => w.context && w.context.path === path);
  await panel.sessionContext.session.kernel.restart();
  return true;
}
"""

# Every view of the page whose kernel went away, with what it shows.
GONE_JS = """
() => [...document.querySelectorAll('[data-mv-widget]')].map(root => {
  const line = root.querySelector(':scope > .mvz-kernel-gone');
  const controls = [...root.querySelectorAll('[data-mv-control]')];
  return {
    widget: root.dataset.mvWidget, state: root.dataset.mvState, kernel: root.dataset.mvKernel || '',
    notice: line && !line.hidden ? line.textContent : '',
    enabled: controls.filter(c => 'disabled' in c && !c.disabled).length,
  };
})
"""

# The widget roots built by createShell / createCoreView (every view of this package).
VIEWS = {"FeatureMaps", "Explorer", "HiddenStates", "Attention", "LayerProbe", "TrainingMonitor"}


def test_views_say_when_their_kernel_restarted(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    notebook = reliability_notebook
    page = lab.page
    assert int(notebook.ask("print(hook_count(hostile))")) == 0
    before = page.evaluate(GONE_JS)
    assert {view["widget"] for view in before} >= VIEWS, before
    assert not any(view["kernel"] or view["notice"] for view in before), before
    mark = lab.log.mark()

    page.evaluate(RESTART_JS, notebook.path)
    notebook.wait_kernel_idle(60)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-mv-widget]')]"
        ".every(root => root.dataset.mvKernel === 'gone')",
        timeout=15_000,
    )

    after = page.evaluate(GONE_JS)
    for view in after:
        assert view["state"] == "error", view
        assert "kernel" in view["notice"] and "re-run the cell" in view["notice"], view
        assert view["enabled"] == 0, f"{view['widget']} keeps enabled controls: {view}"
    assert {view["widget"] for view in after} >= VIEWS
    # The notice is visible text, not only an attribute.
    fm_root = notebook.widget_root("FeatureMaps")
    assert fm_root.locator(".mvz-kernel-gone").is_visible()
    errors = unexplained_errors(lab.log, mark)
    assert not errors, "console/page errors:\n" + "\n".join(errors)


def test_rerun_after_restart_gives_a_live_view_and_no_duplicate_hooks(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    notebook = reliability_notebook
    # The old kernel (and its hooks) is gone: the new one has no `fm` until the cells run again.
    assert notebook.ask("print('fm' in globals())") == "False"
    notebook.ask(SETUP)
    notebook.run_cell(FEATURE_MAPS, timeout=60)
    roots = notebook.page.locator('[data-mv-widget="FeatureMaps"]')
    fresh = roots.last
    notebook.wait_ready(fresh, timeout=60)
    assert fresh.get_attribute("data-mv-kernel") is None
    assert fresh.locator(".mvz-kernel-gone").is_hidden()
    assert int(notebook.ask("print(hook_count(hostile))")) == 0
    # The view captures again (a layer change re-runs the model with a hook): still no hooks left.
    before = notebook.seq(fresh)
    fresh.locator('[data-mv-control="layer"]').select_option(value="</script>")
    notebook.wait_seq_after(fresh, before, timeout=30)
    assert notebook.ask("print(fm.layer, len(fm_applied) > 0)") == "</script> True"
    assert int(notebook.ask("print(hook_count(hostile))")) == 0
    # The views of the old kernel still say so.
    assert roots.first.get_attribute("data-mv-kernel") == "gone"


def test_reload_renders_the_live_view_and_names_the_lost_ones(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    notebook = reliability_notebook
    page = lab.page
    page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:save')", notebook.path)
    page.wait_for_timeout(500)

    def leave(dialog: object) -> None:
        if getattr(dialog, "type", "") == "beforeunload":
            dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", leave)
    try:
        page.reload(wait_until="domcontentloaded")
    finally:
        page.remove_listener("dialog", leave)
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.wait_for_function(
        "(path) => (" + KERNEL_STATE_JS + ")(path) === 'idle/connected'",
        arg=notebook.path,
        timeout=60_000,
    )
    # The FeatureMaps of the live kernel renders and works; the old ones are named, not blank.
    live = page.locator('[data-mv-widget="FeatureMaps"]')
    live.first.wait_for(state="attached", timeout=30_000)
    assert live.count() == 1, "only the widget of the running kernel can render"
    notebook.wait_ready(live.first, timeout=60)
    assert live.first.get_attribute("data-mv-kernel") is None
    # JupyterLab's manager answers "model not found" once it has restored what the kernel has.
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".filter(o => /Error displaying widget/.test(o.textContent)).length >= 5",
            timeout=20_000,
        )
    except Exception as error:
        texts = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".map(o => o.textContent.slice(0, 80))"
        )
        raise AssertionError(f"outputs of the old kernel's widgets: {texts}") from error
    assert notebook.ask("print(fm.layer)") == "</script>"


def test_a_crashed_kernel_is_said_too(reliability_notebook: Notebook, lab: LabSession) -> None:
    """A kernel that dies (here ``os._exit``) is restarted by the server; the live view says so."""
    page = lab.page
    live = page.locator('[data-mv-widget="FeatureMaps"]').first
    assert live.get_attribute("data-mv-kernel") is None
    page.evaluate(
        "(path) => Array.from(window.jupyterapp.shell.widgets('main'))"
        ".find(w => w.context && w.context.path === path)"
        ".sessionContext.session.kernel.requestExecute({code: 'import os; os._exit(1)'})",
        reliability_notebook.path,
    )
    page.wait_for_function(
        "(el) => el.dataset.mvKernel === 'gone' && el.dataset.mvState === 'error'",
        arg=live.element_handle(),
        timeout=30_000,
    )
    assert "re-run the cell" in (live.locator(".mvz-kernel-gone").text_content() or "")
    reliability_notebook.wait_kernel_idle(60)
