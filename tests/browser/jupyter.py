"""Drive a real JupyterLab 4 in a real Chromium, for the browser tests and the browser benchmark.

Plain functions and classes, no pytest: ``benchmarks/bench_browser.py`` imports this module too.
The server lives in :mod:`.lab_server`, the browser and its console log in :mod:`.chromium`, the
page scripts in :mod:`.page_scripts`; this module opens notebooks in the page and runs them
(:class:`Notebook`), asks the kernel questions through an extra cell, finds widget roots by
``data-mv-widget`` (:class:`WidgetView` is the base of the tests' per-widget helpers) and times
key-press-to-redraw (:class:`Echo` is the plain ipywidgets baseline).
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chromium import (
    ARTIFACTS_DIR,
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    JUPYTER_NOISE,
    Ignore,
    LogEntry,
    PageLog,
    launch_chromium,
    require_chromium,
    save_failure_artifacts,
    unexplained_errors,
)
from .lab_server import REPO_ROOT, HarnessError, LabServer, free_port, require_built_js
from .page_scripts import (
    ARM_SEQ_JS,
    ARM_TEXT_JS,
    CANVAS_STATS_JS,
    KERNEL_STATE_JS,
    LATENCY_SETUP_JS,
    OUTPUTS_JS,
    RUN_ALL_JS,
    RUN_CELL_JS,
    SETTLED_JS,
)

__all__ = [
    "ARTIFACTS_DIR",
    "CANVAS_STATS_JS",
    "CHROMIUM_ARGS",
    "CHROMIUM_PATH",
    "JUPYTER_NOISE",
    "REPO_ROOT",
    "Echo",
    "HarnessError",
    "Ignore",
    "LabServer",
    "LabSession",
    "LogEntry",
    "Notebook",
    "PageLog",
    "Sample",
    "WidgetView",
    "drawn",
    "error_outputs",
    "free_port",
    "lab_session",
    "launch_chromium",
    "output_text",
    "require_built_js",
    "require_chromium",
    "save_failure_artifacts",
    "summarize",
    "unexplained_errors",
    "write_notebook",
]


def output_text(outputs: Sequence[dict[str, Any]], streams: Sequence[str] = ("stdout",)) -> str:
    """Text of nbformat outputs: the chosen streams plus ``text/plain`` results, in order."""
    parts: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") in streams:
            text = output.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
        elif kind in ("execute_result", "display_data") and "stdout" in streams:
            plain = output.get("data", {}).get("text/plain")
            if plain is not None and kind == "execute_result":
                parts.append(("".join(plain) if isinstance(plain, list) else plain) + "\n")
    return "".join(parts)


def error_outputs(cells: Sequence[dict[str, Any]]) -> list[str]:
    """Describe every error output and every stderr stream that carries a traceback."""
    problems: list[str] = []
    for cell in cells:
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(
                    f"cell {cell['index']}: {output.get('ename')}: {output.get('evalue')}\n"
                    f"  source: {cell['source']!r}"
                )
            elif kind == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                if "Traceback" in text or "Error" in text.split(":")[0]:
                    problems.append(f"cell {cell['index']} stderr:\n{text[-2000:]}")
    return problems


@dataclass
class Sample:
    """One key-press-to-DOM-change measurement in milliseconds (``None`` when it timed out)."""

    ms: float | None
    detail: dict[str, Any]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / min / max / mean of some milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def percentile(q: float) -> float:
        # Linear interpolation between closest ranks (numpy's default).
        pos = (len(ordered) - 1) * q
        low = int(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return {
        "n": len(ordered),
        "p50": round(percentile(0.50), 2),
        "p95": round(percentile(0.95), 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


class Notebook:
    """One notebook opened in a JupyterLab page."""

    def __init__(self, page: Any, server: LabServer, path: str) -> None:
        self.page = page
        self.server = server
        self.path = path

    # -- opening and running --

    @classmethod
    def open(cls, page: Any, server: LabServer, path: str, timeout: float = 120.0) -> Notebook:
        """Open ``/lab/tree/<path>``, wait for the app to be restored and the kernel to be idle."""
        notebook = cls(page, server, path)
        # One notebook at a time: earlier notebooks' kernels are shut down (they would hold CPU and
        # memory) and `?reset` opens a fresh workspace, so no older tab is restored beside this one.
        server.shutdown_sessions()

        # JupyterLab asks before leaving a page with unsaved notebooks; leaving is what we want.
        def leave(dialog: Any) -> None:
            if dialog.type == "beforeunload":
                dialog.accept()

        page.on("dialog", leave)
        try:
            page.goto(
                server.notebook_url(path),
                timeout=timeout * 1000,
                wait_until="domcontentloaded",
            )
        finally:
            page.remove_listener("dialog", leave)
        page.wait_for_function("() => !!window.jupyterapp", timeout=timeout * 1000)
        page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        page.wait_for_selector(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook",
            state="visible",
            timeout=timeout * 1000,
        )
        notebook.wait_kernel_idle(timeout)
        page.evaluate(LATENCY_SETUP_JS)
        return notebook

    def kernel_state(self) -> str:
        return str(self.page.evaluate(KERNEL_STATE_JS, self.path))

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        try:
            self.page.wait_for_function(
                "(path) => (" + KERNEL_STATE_JS + ")(path) === 'idle/connected'",
                arg=self.path, timeout=timeout * 1000, polling=100,
            )  # fmt: skip
        except Exception as error:
            raise HarnessError(
                f"kernel of {self.path} not idle after {timeout:.0f} s (now {self.kernel_state()})"
            ) from error

    def wait_settled(self, timeout: float = 60.0) -> None:
        """Wait until no cell prompt shows ``[*]`` and the kernel is idle."""
        try:
            self.page.wait_for_function(
                SETTLED_JS, arg=self.path, timeout=timeout * 1000, polling=100
            )
        except Exception as error:
            raise HarnessError(
                f"{self.path} still running after {timeout:.0f} s (kernel {self.kernel_state()})"
            ) from error

    def run_all(self, timeout: float = 300.0) -> None:
        """Run every cell (``notebook:run-all-cells``) and wait until all have finished."""
        how = self.page.evaluate(RUN_ALL_JS, {"path": self.path, "timeout": timeout * 1000})
        if how != "done":
            raise HarnessError(f"run-all-cells of {self.path} did not finish in {timeout:.0f} s")
        self.wait_settled(timeout)

    def run_cell(self, code: str, timeout: float = 30.0) -> dict[str, Any]:
        """Append a code cell, run it; return its nbformat outputs and execution count."""
        self.wait_settled(timeout)
        result = self.page.evaluate(
            RUN_CELL_JS, {"path": self.path, "code": code, "timeout": timeout * 1000}
        )
        if result["how"] != "done":
            raise HarnessError(f"cell did not finish in {timeout:.0f} s: {code!r}")
        self.wait_settled(timeout)
        return dict(result)

    def ask(self, code: str, timeout: float = 30.0) -> str:
        """Run ``code`` in an extra cell; return what it printed (stripped); raise on any error."""
        result = self.run_cell(code, timeout)
        errors = error_outputs(
            [{"index": result["index"], "source": code, "outputs": result["outputs"]}]
        )
        stderr = output_text(result["outputs"], streams=("stderr",))
        if errors:
            raise AssertionError(f"asking the kernel {code!r} failed:\n" + "\n".join(errors))
        if stderr.strip():
            raise AssertionError(f"asking the kernel {code!r} wrote to stderr:\n{stderr}")
        return output_text(result["outputs"]).strip()

    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the open notebook: index, type, source head, nbformat outputs."""
        return list(self.page.evaluate(OUTPUTS_JS, self.path))

    def error_outputs(self) -> list[str]:
        """Error outputs, stderr tracebacks and "Error displaying widget" texts in the notebook."""
        problems = error_outputs(self.cells())
        rendered = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".map(n => n.textContent).filter(t => /Error displaying widget|"
            "Failed to load model class/.test(t)).map(t => t.slice(0, 500))"
        )
        problems.extend(f"rendered: {text}" for text in rendered)
        return problems

    def assert_no_error_outputs(self) -> None:
        problems = self.error_outputs()
        if problems:
            raise AssertionError("error outputs in the notebook:\n" + "\n".join(problems))

    # -- widgets --

    def widget_root(self, widget: str, nth: int = 0) -> Any:
        """Locator of the ``nth`` element with ``data-mv-widget="<widget>"``."""
        return self.page.locator(f'[data-mv-widget="{widget}"]').nth(nth)

    def wait_ready(self, root: Any, timeout: float = 30.0) -> str:
        """Wait until the root's ``data-mv-state`` is ``ready``; fail with its text on ``error``."""
        root.wait_for(state="attached", timeout=timeout * 1000)
        handle = root.element_handle()
        try:
            self.page.wait_for_function(
                "(el) => ['ready', 'error'].includes(el.getAttribute('data-mv-state'))",
                arg=handle, timeout=timeout * 1000, polling="raf",
            )  # fmt: skip
        except Exception as error:
            state = handle.get_attribute("data-mv-state")
            raise HarnessError(
                f"widget not ready after {timeout:.0f} s (data-mv-state={state!r})"
            ) from error
        state = handle.get_attribute("data-mv-state")
        if state == "error":
            raise AssertionError(f"widget shows an error: {handle.inner_text()[:1000]}")
        return str(state)

    @staticmethod
    def seq(root: Any) -> int:
        """The root's ``data-mv-seq`` as an int (-1 when absent)."""
        value = root.get_attribute("data-mv-seq")
        return int(value) if value not in (None, "") else -1

    def wait_seq_after(self, root: Any, before: int, timeout: float = 10.0) -> int:
        """Wait until ``data-mv-seq`` exceeds ``before`` with state ``ready``; return it."""
        handle = root.element_handle()
        try:
            self.page.wait_for_function(
                "([el, before]) => Number(el.getAttribute('data-mv-seq')) > before"
                " && ['ready', 'error'].includes(el.getAttribute('data-mv-state'))",
                arg=[handle, before], timeout=timeout * 1000, polling="raf",
            )  # fmt: skip
        except Exception as error:
            raise AssertionError(
                f"data-mv-seq stayed at {self.seq(root)} (was {before}) for {timeout:.0f} s; "
                f"state={root.get_attribute('data-mv-state')!r}"
            ) from error
        if root.get_attribute("data-mv-state") == "error":
            raise AssertionError(f"widget shows an error: {root.inner_text()[:1000]}")
        return self.seq(root)

    def canvas_stats(self, root: Any) -> list[dict[str, Any]]:
        return list(root.evaluate(CANVAS_STATS_JS))

    # -- latency --

    def key_to_text(
        self, target: Any, watched: Any, key: str, expected: str, timeout: float = 5.0
    ) -> Sample:
        """Press ``key`` on ``target``; time until ``watched``'s text equals ``expected``."""
        target.focus()
        self.page.evaluate(ARM_TEXT_JS, [watched.element_handle(), expected, timeout * 1000])
        self.page.keyboard.press(key)
        return self._collect()

    def key_to_seq(self, target: Any, root: Any, key: str, timeout: float = 5.0) -> Sample:
        """Press ``key`` on ``target``; time until ``root``'s seq changes with state ``ready``."""
        target.focus()
        self.page.evaluate(ARM_SEQ_JS, [root.element_handle(), timeout * 1000])
        self.page.keyboard.press(key)
        return self._collect()

    def _collect(self) -> Sample:
        detail = dict(self.page.evaluate("() => window.__mvLatency.pending"))
        if not detail.get("ok") or detail.get("key_at") is None:
            if detail.get("key_prevented"):
                detail["diagnosis"] = (
                    f"the keydown on {detail.get('key_target')} was cancelled (defaultPrevented) "
                    "and nothing changed: in JupyterLab's command mode its notebook shortcuts "
                    "(ArrowLeft/Right collapse/expand headings, ArrowUp/Down move between cells) "
                    "take arrow keys from controls that are not :read-write (range inputs, "
                    "selects) unless the control or an ancestor has data-lm-suppress-shortcuts"
                )
            return Sample(None, detail)
        return Sample(float(detail["done_at"]) - float(detail["key_at"]), detail)


# --- one widget root, the base of the tests' per-widget helpers ----------------------------------


class WidgetView:
    """One widget root in the page, its controls and canvases, and the Python name of its widget.

    Parameters
    ----------
    notebook
        The open notebook the root is in.
    root
        Locator of the root (see :meth:`Notebook.widget_root`).
    python_name
        The kernel variable holding the widget, for :meth:`python`; ``None`` when there is none.
    """

    def __init__(self, notebook: Notebook, root: Any, python_name: str | None = None) -> None:
        self.notebook = notebook
        self.page = notebook.page
        self.root = root
        self.python_name = python_name

    def control(self, trait: str) -> Any:
        """The first element with ``data-mv-control="<trait>"`` under the root."""
        return self.root.locator(f'[data-mv-control="{trait}"]').first

    def part(self, name: str) -> Any:
        """The first element with ``data-mv-part="<name>"`` under the root."""
        return self.root.locator(f'[data-mv-part="{name}"]').first

    def seq(self) -> int:
        """The root's ``data-mv-seq`` (-1 when absent)."""
        return self.notebook.seq(self.root)

    def canvases(self) -> dict[str, dict[str, Any]]:
        """Pixel summaries of the canvases with a ``data-mv-part``, keyed by that part."""
        stats = self.root.evaluate(CANVAS_STATS_JS)
        return {stat["part"]: stat for stat in stats if stat["part"]}

    def python(self, expression: str) -> str:
        """What ``expression`` (with the widget as ``{w}``) prints in the kernel now."""
        if self.python_name is None:
            raise HarnessError(f"{type(self).__name__} was given no python_name to ask about")
        return self.notebook.ask(f"print({expression.format(w=self.python_name)})")


# --- a whole session: server + browser + page -----------------------------------------------------


@dataclass
class LabSession:
    server: LabServer
    playwright: Any
    browser: Any
    context: Any
    page: Any
    log: PageLog

    def run_notebook(self, source: Path | str) -> Notebook:
        """Copy ``source`` into the server root (unless it is there), open it, run every cell and
        fail on any error output."""
        source = Path(source)
        if source.parent == self.server.root_dir:
            name = source.name
        else:
            if not source.is_file():
                raise HarnessError(f"{source} is missing")
            name = self.server.add_notebook(source)
        notebook = Notebook.open(self.page, self.server, name, timeout=120)
        notebook.run_all(timeout=300)
        notebook.assert_no_error_outputs()
        return notebook


def drawn(picture: dict[str, Any]) -> bool:
    """A canvas with something on it: some size, opaque pixels, more than one colour."""
    return picture["width"] > 0 and picture["opaque"] > 0 and picture["colors"] >= 2


@contextlib.contextmanager
def lab_session(
    notebooks: Sequence[Path | str] = (),
    viewport: tuple[int, int] = (1400, 1000),
    tcp_nodelay: bool = True,
    app: str = "lab",
    playwright: Any = None,
) -> Iterator[LabSession]:
    """Server with ``notebooks`` copied in, Chromium, and one page with its console recorded;
    ``app="notebook"`` serves Notebook 7 instead of JupyterLab. Pass the ``playwright`` of a
    running ``sync_playwright()`` to share it: the sync API allows one at a time per thread."""
    require_chromium()
    server_ = LabServer(notebooks, tcp_nodelay=tcp_nodelay, app=app)
    with server_ as server, _playwright(playwright) as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(30_000)
            page = context.new_page()
            log = PageLog()
            log.attach(page)
            yield LabSession(server, playwright, browser, context, page, log)
        finally:
            browser.close()


@contextlib.contextmanager
def _playwright(running: Any = None) -> Iterator[Any]:
    """``running`` as it is, or a new ``sync_playwright()`` for the duration."""
    if running is not None:
        yield running
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """Write a minimal nbformat-4 notebook of code cells with a python3 kernelspec."""
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{index}",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for index, source in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path


# --- the plain ipywidgets echo the latency budget is measured against -----------------------------

ECHO_CODE = """\
import ipywidgets as _mv_w
mv_echo_slider = _mv_w.IntSlider(value=0, min=0, max=1000, description="echo")
mv_echo_label = _mv_w.Label(value="0")
mv_echo_slider.observe(
    lambda change: setattr(mv_echo_label, "value", str(change["new"])), names="value"
)
mv_echo_slider.add_class("mv-echo-slider")
mv_echo_label.add_class("mv-echo-label")
display(_mv_w.VBox([mv_echo_slider, mv_echo_label]))
"""


class Echo:
    """An ``IntSlider`` whose observer copies its value into a ``Label``, shown in an extra cell."""

    def __init__(self, notebook: Notebook, timeout: float = 30.0) -> None:
        self.notebook = notebook
        notebook.run_cell(ECHO_CODE, timeout)
        page = notebook.page
        self.handle = page.locator(".mv-echo-slider .noUi-handle").last
        self.label = page.locator(".mv-echo-label").last
        self.handle.wait_for(state="visible", timeout=timeout * 1000)
        self.label.wait_for(state="attached", timeout=timeout * 1000)
        self.value = 0

    def step(self, timeout: float = 5.0) -> Sample:
        """Move the slider by one with the keyboard; time until the label shows the new value."""
        key = "ArrowRight" if self.value < 1000 else "ArrowLeft"
        expected = self.value + (1 if key == "ArrowRight" else -1)
        sample = self.notebook.key_to_text(self.handle, self.label, key, str(expected), timeout)
        if sample.ms is not None:
            self.value = expected
        else:
            text = self.label.text_content() or ""
            self.value = int(text) if text.strip().lstrip("-").isdigit() else self.value
        return sample
