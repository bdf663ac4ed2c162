"""binder/: repo2docker's files install the pinned CPU torch first and open on the tour."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BINDER = REPO_ROOT / "binder"


def test_binder_pins_cpu_torch_and_opens_on_the_tour() -> None:
    environment = (BINDER / "environment.yml").read_text()
    assert "torch==2.13.0+cpu" in environment
    post_build = (BINDER / "postBuild").read_text()
    subprocess.run(["bash", "-n", str(BINDER / "postBuild")], check=True)
    match = re.search(r'default_url = "/lab/tree/(notebooks/[^"]+)"', post_build)
    assert match, "postBuild does not set the default URL"
    assert (REPO_ROOT / match.group(1)).is_file(), f"{match.group(1)} does not exist"
