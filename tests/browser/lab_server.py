"""A throw-away ``jupyter lab`` for the browser tests and the browser benchmark.

:class:`LabServer` starts ``jupyter lab`` from the current interpreter on a free loopback port, with
an empty token, a temporary root directory holding copies of the notebooks under test, throw-away
settings (notebook windowing off, so every output stays in the DOM; no news or update checks) and
throw-away workspaces, and ends the whole process tree at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

APPS = {"lab": "LabApp", "notebook": "JupyterNotebookApp"}
"""The front ends the harness can serve: ``jupyter lab`` (JupyterLab 4) and ``jupyter notebook``
(Notebook 7), by their traitlets configuration class."""

# JupyterLab user settings written for the test server. Windowing "none" keeps every cell and output
# attached to the DOM; no news or update checks, which would ask the internet from the server.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/notebook-extension/tracker": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}


class HarnessError(RuntimeError):
    """Something the browser harness needs is missing or did not happen in time."""


def require_built_js(names: Iterable[str] = ("feature_maps.js",)) -> list[Path]:
    """Return the built view bundles, or raise :class:`HarnessError` saying how to build them."""
    static = REPO_ROOT / "modelviz_widgets" / "static"
    paths = [static / name for name in names]
    missing = [str(p) for p in paths if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise HarnessError(
            f"built JS missing: {', '.join(missing)}. Build it: cd js && npm ci && npm run build."
        )
    return paths


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# jupyter_server never calls set_nodelay on its kernel websockets, so tornado leaves Nagle's
# algorithm on; with Linux's 40 ms delayed ACK, a kernel->browser message that follows another one
# closely (the Label update after the slider's echo, say) waits ~40 ms about half the time. Every
# widget sees it, but it makes latencies bimodal (~10 ms or ~50 ms) and any p50 comparison a coin
# flip. This server config (run only by the test server) turns TCP_NODELAY on for kernel websockets.
_NODELAY_CONFIG = """\
# Written by tests/browser/jupyter.py for a throw-away test server.
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler as _Handler

_open = _Handler.open


async def _open_without_nagle(self, *args, **kwargs):
    self.set_nodelay(True)
    return await _open(self, *args, **kwargs)


_Handler.open = _open_without_nagle
"""


class LabServer:
    """A ``jupyter lab`` process serving copies of some notebooks from a temporary root directory.

    ``tcp_nodelay`` turns Nagle's algorithm off on the kernel websockets (see ``_NODELAY_CONFIG``);
    ``False`` measures stock jupyter_server. Use as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        notebooks: Sequence[Path | str] = (),
        startup_timeout: float = 90.0,
        extra_env: dict[str, str] | None = None,
        tcp_nodelay: bool = True,
        app: str = "lab",
    ) -> None:
        if app not in APPS:
            raise ValueError(f"app must be one of {', '.join(APPS)}, got {app!r}")
        self.app = app
        self.notebooks = [Path(p) for p in notebooks]
        self.startup_timeout = startup_timeout
        self.tcp_nodelay = tcp_nodelay
        self.extra_env = dict(extra_env or {})
        self.tmp = Path(tempfile.mkdtemp(prefix="mv-lab-"))
        self.root_dir = self.tmp / "root"
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.tmp / "jupyter-lab.log"

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def notebook_url(self, path: str) -> str:
        """Where a notebook opens: ``/lab/tree/<path>?reset`` (a fresh workspace) in JupyterLab,
        ``/notebooks/<path>`` in Notebook 7."""
        if self.app == "notebook":
            return f"{self.url}/notebooks/{path}"
        return f"{self.url}/lab/tree/{path}?reset"

    def add_notebook(self, source: Path | str, name: str | None = None) -> str:
        """Copy a notebook into the server root; return its path relative to the root."""
        source = Path(source)
        target = self.root_dir / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target.relative_to(self.root_dir).as_posix()

    def _write_settings(self) -> Path:
        settings_dir = self.tmp / "user-settings"
        for plugin, values in LAB_SETTINGS.items():
            if self.app == "notebook" and plugin.startswith("@jupyterlab/extensionmanager"):
                continue  # Notebook 7 has no extension manager: its settings break the page
            path = settings_dir / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return settings_dir

    def _env(self, settings_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("config", "data", "runtime"):
            (self.tmp / name).mkdir(exist_ok=True)
        if self.tcp_nodelay:
            (self.tmp / "config" / "jupyter_server_config.py").write_text(_NODELAY_CONFIG)
        env.update(
            {
                # Nothing from the user's ~/.jupyter or ~/.local/share/jupyter leaks in.
                "JUPYTER_CONFIG_DIR": str(self.tmp / "config"),
                "JUPYTER_DATA_DIR": str(self.tmp / "data"),
                "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
                "JUPYTERLAB_WORKSPACES_DIR": str(self.tmp / "workspaces"),
                "JUPYTER_PLATFORM_DIRS": "1",
                # The kernel imports modelviz_widgets from this working tree, installed or not.
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        for notebook in self.notebooks:
            self.add_notebook(notebook)
        settings_dir = self._write_settings()
        env = self._env(settings_dir)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            app_class = APPS[self.app]
            command = [
                sys.executable, "-m", "jupyter", self.app,
                "--no-browser",
                "--ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--IdentityProvider.token=",
                "--ServerApp.password=",
                "--ServerApp.disable_check_xsrf=True",
                f"--ServerApp.root_dir={self.root_dir}",
                f"--{app_class}.workspaces_dir={self.tmp / 'workspaces'}",
                f"--{app_class}.user_settings_dir={settings_dir}",
                f"--{app_class}.expose_app_in_browser=True",
            ]  # fmt: skip
            if self.app == "lab":
                command.append("--LabApp.news_url=")
            if os.geteuid() == 0:  # CI containers run as root
                command.append("--allow-root")
            log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                command, cwd=self.root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            log.close()
            try:
                self._wait_ready()
                return
            except HarnessError as error:
                last_error = str(error)
                self.stop(remove_tmp=False)
                if "already in use" not in self.log_tail():
                    break
        raise HarnessError(f"jupyter {self.app} did not start: {last_error}\n{self.log_tail()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise HarnessError(f"jupyter lab exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        raise HarnessError(f"no answer from {self.url}/api/status in {self.startup_timeout:.0f} s")

    def shutdown_sessions(self) -> None:
        """Shut down every kernel session the server has (the notebooks opened before)."""
        with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=10) as response:
            sessions = json.loads(response.read())
        for session in sessions:
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", method="DELETE"
            )
            with contextlib.suppress(urllib.error.URLError):
                urllib.request.urlopen(request, timeout=30).close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, remove_tmp: bool = True) -> None:
        """Shut the server down, then end every process it started (kernels have their own
        sessions, so they are found by parent id before the server goes)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            tree = _descendants(process.pid)
            with contextlib.suppress(OSError):
                # The server shuts its kernels down cleanly on this request.
                request = urllib.request.Request(f"{self.url}/api/shutdown", method="POST")
                urllib.request.urlopen(request, timeout=5).close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything left in the server's group
            deadline = time.monotonic() + 5
            while any(_pid_alive(pid) for pid in tree) and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in tree:  # kernels that outlived their server, by id
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if remove_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
