"""Event floods in a real JupyterLab: 1,000 control events as fast as the page can dispatch them.

Peers froze or lagged here: ipywidgets' own message throttle was broken for a while
(jupyter-widgets/ipywidgets#3469, fixed by #3470), a rapid front-end/kernel ping-pong froze an
anywidget kernel (manzt/anywidget#914), and slider messages queue behind a busy kernel
(jupyter-widgets/ipywidgets#1349). The promise: the kernel computes far fewer updates than events
(FrameThrottle in js/src/lib/controls.ts sends at most one value per animation frame, and
ipywidgets keeps one update in flight), the LAST value is what Python holds and what the view
draws, nothing errs, and the kernel still answers afterwards.
"""

from __future__ import annotations

import json

import pytest

from tests.browser.jupyter import LabSession, Notebook, WidgetView, unexplained_errors

pytestmark = pytest.mark.browser

EVENTS = 1000

# Alternates `input` events between the channel and the sample slider, yielding to the event loop
# every 25 events (so the flood spans many animation frames and messages leave mid-flood), then
# ends each drag with a `change` on its final value, as a released thumb does.
FLOOD_JS = """
async ([root, n, finalChannel, finalSample]) => {
  const channel = root.querySelector('[data-mv-control="channel"]');
  const sample = root.querySelector('[data-mv-control="sample"]');
  const set = (el, value, type) => {
    el.value = String(value);
    el.dispatchEvent(new Event(type, {bubbles: true}));
  };
  const channels = Number(channel.max) + 1, samples = Number(sample.max) + 1;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) set(channel, (i * 7) % channels, 'input');
    else set(sample, (i * 5) % samples, 'input');
    if (i % 25 === 24) await new Promise(resolve => setTimeout(resolve, 0));
  }
  set(channel, finalChannel, 'input');
  set(channel, finalChannel, 'change');
  set(sample, finalSample, 'input');
  set(sample, finalSample, 'change');
  return performance.now() - started;
}
"""

CLICKS_JS = """
([root, names, n, final]) => {
  const row = (name) => root.querySelector(`.mvz-node[data-mv-layer="${CSS.escape(name)}"]`);
  const started = performance.now();
  for (let i = 0; i < n; i++) row(names[i % names.length]).click();
  row(final).click();
  return performance.now() - started;
}
"""


def python_json(notebook: Notebook, expression: str) -> object:
    return json.loads(notebook.ask(f"import json; print(json.dumps({expression}))"))


def wait_view_settled(notebook: Notebook, root: object, seq: int, timeout: float = 20.0) -> None:
    """Wait until the root shows payload ``seq`` (data-mv-seq) with state ``ready``."""
    notebook.page.wait_for_function(
        "([el, seq]) => el.dataset.mvSeq === String(seq) && el.dataset.mvState === 'ready'",
        arg=[root.element_handle(), seq],  # type: ignore[attr-defined]
        timeout=timeout * 1000,
    )


def test_feature_maps_flood_is_coalesced_and_ends_on_the_last_value(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    notebook = reliability_notebook
    view = WidgetView(notebook, notebook.widget_root("FeatureMaps"), "fm")
    notebook.wait_ready(view.root, timeout=60)
    n_channels = int(view.python("{w}.n_channels"))
    n_samples = int(view.python("{w}.n_samples"))
    assert (n_channels, n_samples) == (16, 12)
    final_channel, final_sample = 11, 7
    applied_before = int(notebook.ask("print(len(fm_applied))"))
    log_mark = lab.log.mark()

    seconds = view.root.evaluate(
        f"(root) => ({FLOOD_JS})([root, {EVENTS}, {final_channel}, {final_sample}])"
    )

    # The kernel handles the messages before this cell (same shell channel, in order).
    state = python_json(
        notebook,
        "{'channel': fm.channel, 'sample': fm.sample, 'meta': fm.channel_meta, "
        "'error': fm.error, 'applied': len(fm_applied)}",
    )
    assert isinstance(state, dict)
    computed = int(state["applied"]) - applied_before
    assert (state["channel"], state["sample"]) == (final_channel, final_sample), state
    meta = state["meta"]
    assert (meta["channel"], meta["sample"]) == (final_channel, final_sample), meta
    assert state["error"] == ""
    print(f"FeatureMaps flood: {computed} kernel updates for {EVENTS} events ({seconds:.0f} ms)")
    # Coalesced: far fewer computed updates than events (without throttling, one per event).
    assert 1 <= computed <= EVENTS // 10, (
        f"the kernel computed {computed} updates for {EVENTS} events in {seconds:.0f} ms"
    )
    # The view draws the last payload and its controls show the last values.
    wait_view_settled(notebook, view.root, int(meta["seq"]))
    assert view.control("channel").input_value() == str(final_channel)
    assert view.control("sample").input_value() == str(final_sample)
    readouts = view.root.locator(".mvz-readout")
    assert readouts.nth(0).text_content() == str(final_channel)
    assert readouts.nth(1).text_content() == str(final_sample)
    assert view.root.get_by_text(f"channel {final_channel}", exact=True).count() == 1
    # Nothing failed, and the kernel still answers.
    notebook.assert_no_error_outputs()
    assert notebook.ask("print(6 * 7)") == "42"
    notebook.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log, log_mark)
    assert not errors, "console/page errors:\n" + "\n".join(errors)


def test_explorer_tree_click_flood_ends_on_the_last_row(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    notebook = reliability_notebook
    view = WidgetView(notebook, notebook.widget_root("Explorer"), "explorer")
    view.root.scroll_into_view_if_needed()
    notebook.wait_ready(view.root, timeout=60)
    names = view.root.locator(".mvz-node[data-mv-layer]").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.mvLayer).filter((name) => name)"
    )
    assert len(names) >= 3, names
    final = names[1] if view.python("{w}.layer") != names[1] else names[2]
    clicks = 200
    received_before = int(notebook.ask("print(len(explorer_states))"))
    log_mark = lab.log.mark()

    view.root.evaluate(
        f"(root) => ({CLICKS_JS})([root, {json.dumps(names)}, {clicks}, {json.dumps(final)}])"
    )

    state = python_json(
        notebook,
        "{'layer': explorer.layer, 'error': explorer.core.error, "
        "'received': len(explorer_states), 'seq': explorer.core.seq}",
    )
    assert isinstance(state, dict)
    assert state["layer"] == final and state["error"] == "", state
    received = int(state["received"]) - received_before
    print(f"Explorer flood: {received} state messages for {clicks + 1} clicks")
    assert 1 <= received <= clicks // 4, f"the kernel handled {received} of {clicks + 1} clicks"
    wait_view_settled(notebook, view.root, int(state["seq"]))
    selected = view.root.locator('.mvz-node[aria-selected="true"]')
    assert selected.count() == 1 and selected.get_attribute("data-mv-layer") == final
    notebook.assert_no_error_outputs()
    assert notebook.ask("print(6 * 7)") == "42"
    errors = unexplained_errors(lab.log, log_mark)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
