"""Build hook for hatch-jupyter-builder: ``npm ci && npm run build`` in ``js/``.

hatch-jupyter-builder's stock ``npm_builder`` runs ``npm install``, which may rewrite the lockfile;
a release build must install exactly what ``package-lock.json`` pins, so this runs ``npm ci``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatch_jupyter_builder.utils import is_stale


def npm_ci_build(
    target_name: str,
    version: str,
    path: str = "js",
    build_dir: str | None = None,
    source_dir: str | None = None,
    force: bool = False,
) -> None:
    """Install the pinned JS toolchain and bundle the widget views when they are stale."""
    if os.environ.get("HATCH_JUPYTER_BUILDER_SKIP_NPM") == "1":
        return
    if build_dir and source_dir and not force and not is_stale(build_dir, source_dir):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "Building modelviz-widgets from source needs Node.js and npm to bundle js/src; "
            "install Node.js 20.19+ or install the published wheel, which carries the built JS."
        )
    cwd = Path(path).resolve()
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=cwd, check=True)
    subprocess.run([npm, "run", "build"], cwd=cwd, check=True)
