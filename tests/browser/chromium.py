"""Debian's Chromium through Playwright, and what a page logs.

:func:`launch_chromium` starts ``/usr/bin/chromium`` (never a downloaded browser); :class:`PageLog`
records the page's console messages and uncaught errors; :func:`save_failure_artifacts` keeps a
screenshot and that log when something fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lab_server import HarnessError

CHROMIUM_PATH = Path(os.environ.get("MV_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def require_chromium() -> Path:
    """Return Chromium's path, or raise :class:`HarnessError` saying how to install it."""
    if not CHROMIUM_PATH.exists():
        raise HarnessError(
            f"Chromium not found at {CHROMIUM_PATH}. Install Debian's chromium: apt-get update && "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y chromium (the Makefile does); "
            "set MV_CHROMIUM to use another binary. Never `playwright install`."
        )
    return CHROMIUM_PATH


def launch_chromium(playwright: Any, headless: bool = True) -> Any:
    """Start Debian's Chromium through Playwright (never a downloaded browser)."""
    path = require_chromium()
    return playwright.chromium.launch(
        executable_path=str(path), headless=headless, args=CHROMIUM_ARGS, timeout=60_000
    )


@dataclass
class LogEntry:
    kind: str  # "console" or "pageerror"
    level: str  # console type ("error", "warning", ...) or "error" for page errors
    text: str
    location: str = ""

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"[{self.kind}:{self.level}] {self.text}{where}"


@dataclass
class Ignore:
    """A console message expected from Jupyter itself, not from our code, and why it is harmless."""

    contains: str
    reason: str
    level: str = "error"

    def matches(self, entry: LogEntry) -> bool:
        return entry.level == self.level and self.contains in f"{entry.text} {entry.location}"


@dataclass
class PageLog:
    """Everything a page printed to its console and every uncaught error it threw."""

    entries: list[LogEntry] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)

    def _on_console(self, message: Any) -> None:
        location = message.location or {}
        where = location.get("url", "")
        if where:
            where = f"{where}:{location.get('lineNumber', 0)}"
        self.entries.append(LogEntry("console", message.type, message.text, where))

    def _on_pageerror(self, error: Any) -> None:
        text = f"{error.name}: {error.message}" if getattr(error, "name", "") else str(error)
        stack = getattr(error, "stack", "") or ""
        self.entries.append(LogEntry("pageerror", "error", text, stack.splitlines()[1].strip() if
                                     len(stack.splitlines()) > 1 else ""))  # fmt: skip

    def mark(self) -> int:
        return len(self.entries)

    def errors(self, ignore: Sequence[Ignore] = (), since: int = 0) -> list[LogEntry]:
        """Console errors and page errors since ``since`` that no ``ignore`` rule explains."""
        return [
            entry
            for entry in self.entries[since:]
            if (entry.kind == "pageerror" or entry.level == "error")
            and not any(rule.matches(entry) for rule in ignore)
        ]

    def dump(self) -> str:
        return "\n".join(str(entry) for entry in self.entries)


# Console errors from JupyterLab itself that say nothing about our widgets. Each rule is narrow (a
# substring of one known message, console level "error" only) and says why it is harmless here.
# None is needed so far: with JupyterLab 4.6 and Chromium 156 a run of 01_feature_maps.ipynb logs
# only debug lines, plus Canvas2D "willReadFrequently" warnings caused by our own pixel readback.
# (The settings in LAB_SETTINGS keep the news / update / extension-manager requests from erroring.)
JUPYTER_NOISE: list[Ignore] = []


def unexplained_errors(log: PageLog, since: int = 0) -> list[str]:
    """Console and page errors that no ``JUPYTER_NOISE`` rule explains, as text."""
    return [str(entry) for entry in log.errors(JUPYTER_NOISE, since)]


def save_failure_artifacts(
    page: Any, log: PageLog | None, name: str, extra: str = ""
) -> list[Path]:
    """Save a full-page screenshot and the console log under ``tests/browser/artifacts/``."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    saved: list[Path] = []
    if page is not None:
        with contextlib.suppress(Exception):
            shot = ARTIFACTS_DIR / f"{safe}.png"
            page.screenshot(path=str(shot), full_page=True, timeout=10_000)
            saved.append(shot)
    text = (log.dump() if log is not None else "") + (f"\n\n{extra}" if extra else "")
    console = ARTIFACTS_DIR / f"{safe}.console.log"
    console.write_text(text)
    saved.append(console)
    return saved
