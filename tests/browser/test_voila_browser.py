"""Voila: a notebook with an Explorer served as a dashboard (`voila`, no notebook UI); the views
render, and a click in the model tree is answered by the live kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from .chromium import JUPYTER_NOISE, Ignore, PageLog, launch_chromium, save_failure_artifacts
from .jupyter import write_notebook
from .lab_server import REPO_ROOT, HarnessError, free_port, require_built_js

pytestmark = pytest.mark.browser

VOILA_NOISE = [
    Ignore(
        "cdn.jsdelivr.net/npm/@fortawesome",
        "Voila 0.5's page template links Font Awesome from a CDN; offline only its icons are lost",
    ),
    Ignore(
        "labextensions/@jupyter-notebook/lab-extension/",
        "Voila loads every installed JupyterLab extension; Notebook 7's own lab extension (a dev "
        "dependency here) asks for @jupyterlab/docregistry, which Voila does not share (module "
        "federation RUNTIME-012). The stack is that extension's, not a modelviz module's",
    ),
]

CELLS = [
    "import torch\nimport modelviz_widgets as mv\ntorch.set_num_threads(1)",
    "model = mv.demo.digits_cnn()\nimages, labels = mv.demo.load_digits('test')\n"
    "explorer = mv.Explorer(model, images[:8], labels=labels[:8])\nexplorer",
]


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``voila`` serving the dashboard notebook on a free loopback port; its URL."""
    require_built_js(("explorer.js", "feature_maps.js"))
    root = tmp_path_factory.mktemp("voila")
    notebook = write_notebook(root / "dashboard.ipynb", CELLS)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    (root / "runtime").mkdir()
    env.update(JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTER_PLATFORM_DIRS="1")
    log = (root / "voila.log").open("wb")
    command = [
        sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise HarnessError(f"voila exited: {(root / 'voila.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # an answer: the server is up
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise HarnessError("voila did not answer in 90 s") from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def page(
    voila: str, playwright: Any, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, PageLog]]:
    browser = launch_chromium(playwright)  # conftest's one sync_playwright of the session
    tab = browser.new_page(viewport={"width": 1400, "height": 1200})
    log = PageLog()
    log.attach(tab)
    try:
        yield tab, log
    finally:
        report = getattr(request.node, "mv_report_call", None)
        if report is not None and report.failed:
            save_failure_artifacts(tab, log, request.node.nodeid)
        browser.close()


def test_explorer_renders_and_answers_in_voila(voila: str, page: tuple[Any, PageLog]) -> None:
    tab, log = page
    tab.goto(voila, timeout=120_000)
    ready = '[data-mv-widget="{}"][data-mv-state="ready"]'
    tab.wait_for_selector(ready.format("Explorer"), timeout=120_000)
    tab.wait_for_selector(ready.format("FeatureMaps"), timeout=60_000)
    assert tab.locator(".jp-InputArea-editor").count() == 0  # a dashboard: no code shown
    explorer = tab.locator('[data-mv-widget="Explorer"]')
    seq = int(explorer.get_attribute("data-mv-seq") or 0)
    explorer.locator('.mvz-node[data-mv-layer="features.conv2"]').click()
    tab.wait_for_function(
        "(seq) => { const el = document.querySelector('[data-mv-widget=Explorer]');"
        " return Number(el.dataset.mvSeq) > seq && el.dataset.mvState === 'ready'; }",
        arg=seq,
        timeout=30_000,
    )
    select = tab.locator('[data-mv-widget="FeatureMaps"] [data-mv-control="layer"]')
    tab.wait_for_function(
        "() => document.querySelector('[data-mv-widget=FeatureMaps] [data-mv-control=layer]')"
        ".value === 'features.conv2'",
        timeout=30_000,
    )
    assert select.input_value() == "features.conv2"
    errors = [str(entry) for entry in log.errors([*JUPYTER_NOISE, *VOILA_NOISE])]
    assert errors == []
