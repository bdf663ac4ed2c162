"""User strings that look like markup stay text: live in JupyterLab and in the exported HTML.

Jupyter sanitizes the HTML outputs it renders, but never the DOM a widget's JS builds, so escaping
is ours to do. Peers got it wrong: ipywidgets set descriptions through ``innerHTML``
(jupyter-widgets/ipywidgets#2636, plain text by default since #2785) and its embedded state did not
escape ``</script>`` (#2188); a tokenizer visualiser drew token text safely but left ``data-*``
attributes injectable (huggingface/tokenizers#1937, #2210); a measurement key
``</script><img onerror=...>`` broke out of Cirq's inline script (quantumlib/Cirq#8202).

Tokens (HiddenStates, Attention), module names (a ModuleDict key and an ``add_module`` name, seen as
FeatureMaps layers, Explorer tree rows, LayerProbe layers), class names (Explorer) and metric names
(TrainingMonitor) all carry ``</script>``, ``<img src=x onerror=alert(1)>`` and
``<svg onload=alert(1)>`` (conftest.HOSTILE). Each must appear as literal text, create no element,
open no dialog and log no console error. tests/browser/test_attention_browser.py and
test_export_browser.py check one token each; this covers every kind of user string in one notebook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.chromium import PageLog, unexplained_errors
from tests.browser.jupyter import LabSession, Notebook

from .conftest import HOSTILE

pytestmark = pytest.mark.browser

# Elements a user string could have created: an <img>/<svg> with an event handler or src=x, any
# element with an inline handler, a script that would run and mentions alert (the export's state is
# a <script type="application/json">: data, never run).
INJECTED_JS = """
(scope) => {
  const within = scope || document;
  const hits = [...within.querySelectorAll('img[src="x"], [onerror], [onload], svg[onload]')];
  const scripts = [...within.querySelectorAll('script:not([type="application/json"])')]
    .filter(s => /alert\\(1\\)/.test(s.textContent));
  return hits.concat(scripts).map(el => el.outerHTML.slice(0, 200));
}
"""

# Which user strings each live view shows, by data-mv-widget (LayerProbe and TrainingMonitor are
# composites: their names are in the core view and the bqplot figures beside it).
SHOWN = {
    "FeatureMaps": HOSTILE,  # layer names (blocks.<img…>, blocks.<svg…>, </script>)
    "Explorer": HOSTILE,  # tree rows (module names) and class names of the predictions
    "HiddenStates": HOSTILE,  # tokens
    "Attention": HOSTILE,  # tokens
}


@pytest.fixture
def dialogs(lab: LabSession) -> Iterator[list[str]]:
    """Dialogs the page opened during the test (none expected), each dismissed."""
    seen: list[str] = []

    def record(dialog: Any) -> None:
        if dialog.type != "beforeunload":
            seen.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    lab.page.on("dialog", record)
    yield seen
    lab.page.remove_listener("dialog", record)


def _text_of(locator: Any) -> str:
    """Text of an element including <option> labels and title attributes (tooltips)."""
    return str(
        locator.evaluate(
            "(el) => el.textContent + ' ' + [...el.querySelectorAll('[title]')]"
            ".map(n => n.getAttribute('title')).join(' ') + ' ' + "
            "[...el.querySelectorAll('option')].map(o => o.value).join(' ')"
        )
    )


def test_live_views_show_markup_as_text(
    reliability_notebook: Notebook, lab: LabSession, dialogs: list[str]
) -> None:
    notebook = reliability_notebook
    page = lab.page
    mark = lab.log.mark()
    # Re-render every view: a markup string would act now, while the dialog listener is on.
    notebook.ask("display(fm, explorer, hidden, attention, probe, monitor)")
    for widget, strings in SHOWN.items():
        roots = notebook.page.locator(f'[data-mv-widget="{widget}"]')
        assert roots.count() >= 2, f"{widget} was not displayed twice"
        for index in range(roots.count()):
            notebook.wait_ready(roots.nth(index), timeout=60)
            text = _text_of(roots.nth(index))
            missing = [s for s in strings if s not in text]
            assert not missing, f"{widget} #{index} does not show {missing} as text"
    # The composites: names are text in the core view or in the bqplot figures (SVG <text>).
    for widget, needle in (("LayerProbe", HOSTILE[0]), ("TrainingMonitor", HOSTILE[1])):
        roots = page.locator(f'[data-mv-widget="{widget}"]')
        assert roots.count() >= 2, f"{widget} was not displayed twice"
        boxes = page.locator(".jp-OutputArea-output").filter(has=roots.first)
        assert needle in _text_of(boxes.last), f"{widget} does not show {needle!r} as text"
    monitor_text = _text_of(page.locator(".jp-OutputArea-output").filter(
        has=page.locator('[data-mv-widget="TrainingMonitor"]')).last)  # fmt: skip
    assert all(name in monitor_text for name in HOSTILE), "a metric name is not shown as text"

    injected = page.evaluate(INJECTED_JS, None)
    assert injected == [], f"user strings became elements: {injected}"
    page.wait_for_timeout(300)  # a handler that would fire (img onerror) has fired by now
    assert dialogs == [], f"dialogs opened: {dialogs}"
    notebook.assert_no_error_outputs()
    errors = unexplained_errors(lab.log, mark)
    assert not errors, "console/page errors:\n" + "\n".join(errors)


def test_exported_html_shows_markup_as_text(
    reliability_notebook: Notebook, lab: LabSession
) -> None:
    """The same widgets, exported by mv.export_html in the kernel and opened from file://."""
    name = "reliability_export.html"
    target = lab.server.root_dir / name
    title = HOSTILE[0] + HOSTILE[1]
    reliability_notebook.ask(
        "import ipywidgets\n"
        f"mv.export_html(ipywidgets.VBox([fm, explorer, hidden, attention, probe, monitor]), "
        f"{str(target)!r}, title={title!r})",
        timeout=60,
    )
    raw = target.read_text(encoding="utf-8")
    for string in HOSTILE[1:]:
        assert string not in raw, f"{string!r} is in the HTML file unescaped"
    assert raw.count("</script>") == raw.count("<script"), "a </script> in the data ends a script"

    page = lab.browser.new_page()
    log = PageLog()
    log.attach(page)
    seen: list[str] = []

    def record(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(target.as_uri())
        page.wait_for_selector("#mvx-root:not([data-mv-export='loading'])", timeout=30_000)
        assert page.get_attribute("#mvx-root", "data-mv-export") == "ready"
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-mv-widget]')]"
            ".every((el) => ['ready', 'error'].includes(el.dataset.mvState))",
            timeout=30_000,
        )
        assert page.title() == title
        widgets = page.evaluate(
            "() => [...document.querySelectorAll('[data-mv-widget]')]"
            ".map(el => el.dataset.mvWidget)"
        )
        for widget in SHOWN:
            assert widget in widgets, f"{widget} missing from the export: {widgets}"
        for widget in SHOWN:
            text = _text_of(page.locator(f'[data-mv-widget="{widget}"]').first)
            missing = [s for s in HOSTILE if s not in text]
            assert not missing, f"exported {widget} does not show {missing} as text"
        body = _text_of(page.locator("body"))
        assert all(s in body for s in HOSTILE)
        assert page.evaluate(INJECTED_JS, None) == []
        page.wait_for_timeout(300)
        assert seen == [], f"dialogs opened: {seen}"
        offline = [u for u in requests if not u.startswith(("file:", "blob:", "data:"))]
        assert offline == [], f"the export made requests: {offline}"
        errors = unexplained_errors(log)
        assert not errors, "console/page errors:\n" + "\n".join(errors)
    finally:
        page.close()
