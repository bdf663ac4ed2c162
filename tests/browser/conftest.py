"""One JupyterLab server, one Chromium and one page for all browser tests; artifacts on failure.

The server starts once per session; each test module opens its notebook in the same page. When
Chromium or the built JS is missing the tests fail (they do not skip): ``make`` installs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .drivers import FeatureMapsView
from .jupyter import (
    REPO_ROOT,
    HarnessError,
    LabSession,
    Notebook,
    lab_session,
    require_built_js,
    require_chromium,
    save_failure_artifacts,
)

# The one sync_playwright() and the one LabSession of the process, whichever conftest started them.
_SHARED: dict[str, Any] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"mv_report_{report.when}", report)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The one ``sync_playwright()`` of the session: the sync API allows only one at a time, so
    every browser the tests launch (JupyterLab's, Notebook 7's, the exports', Voila's) uses it."""
    # Other test directories (tests/reliability) import these fixtures into their own conftest,
    # which gives each directory its own session fixture: the first one started is shared.
    if _SHARED.get("playwright") is not None:
        yield _SHARED["playwright"]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        _SHARED["playwright"] = running
        try:
            yield running
        finally:
            _SHARED.pop("playwright", None)


@pytest.fixture(scope="session")
def lab(playwright: Any) -> Iterator[LabSession]:
    """JupyterLab on a free loopback port and a Chromium page; fails, saying how to install them,
    when Chromium or the built JS is missing."""
    problem = ""
    try:
        require_chromium()
        require_built_js()
    except HarnessError as error:
        problem = str(error)
    if problem:
        pytest.fail(problem, pytrace=False)
    if _SHARED.get("lab") is not None:  # started for another test directory: one server, one page
        yield _SHARED["lab"]
        return
    with lab_session(playwright=playwright) as session:
        _SHARED["lab"] = session
        try:
            yield session
        finally:
            _SHARED.pop("lab", None)


@pytest.fixture(autouse=True)
def failure_artifacts(request: pytest.FixtureRequest) -> Iterator[None]:
    """On failure, save a screenshot and the page's console log under tests/browser/artifacts/."""
    yield
    failed = any(
        getattr(getattr(request.node, f"mv_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if not failed or "lab" not in request.fixturenames:
        return
    try:
        session: LabSession = request.getfixturevalue("lab")
    except BaseException:  # the session itself failed to start: nothing to photograph
        return
    saved = save_failure_artifacts(
        session.page, session.log, request.node.nodeid, extra=session.server.log_tail(80)
    )
    print("browser artifacts:", ", ".join(str(path) for path in saved))


# MV_FM_NOTEBOOK points the tests at another notebook whose first FeatureMaps is named `fm`.
FEATURE_MAPS_NOTEBOOK = Path(
    os.environ.get("MV_FM_NOTEBOOK", REPO_ROOT / "notebooks" / "01_feature_maps.ipynb")
)


@pytest.fixture(scope="module")
def fm_notebook(lab: LabSession) -> Notebook:
    """notebooks/01_feature_maps.ipynb copied into the server root, opened and run top to bottom."""
    return lab.run_notebook(FEATURE_MAPS_NOTEBOOK)


@pytest.fixture(scope="module")
def fm_view(fm_notebook: Notebook) -> FeatureMapsView:
    """The notebook's first FeatureMaps (Python name ``fm``), drawn and ready."""
    view = FeatureMapsView(fm_notebook, nth=0, python_name="fm")
    view.wait_ready(timeout=60)
    assert view.python("type({w}).__name__") == "FeatureMaps", "`fm` is not a FeatureMaps"
    return view
