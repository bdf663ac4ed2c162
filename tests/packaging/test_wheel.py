"""The built wheel carries the JS and the demo weights, and works in a clean venv without Node."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORCH_PIN = "torch==2.13.0"

SMOKE = r"""
import shutil, sys
assert shutil.which("node") is None and shutil.which("npm") is None, "Node must not be reachable"
import modelviz_widgets as mv
assert mv.__file__.startswith(sys.prefix), mv.__file__  # the installed copy, not the checkout
model = mv.demo.digits_cnn()
images, labels = mv.demo.load_digits()
fm = mv.FeatureMaps(model, images[:4])
assert "bundle missing" not in fm._esm and "export" in fm._esm, fm._esm[:200]
bundle = fm._repr_mimebundle_()
data = bundle[0] if isinstance(bundle, tuple) else bundle
assert "application/vnd.jupyter.widget-view+json" in data, data.keys()
assert fm.grid_meta["shape"][0] == fm.n_channels
print("ok", mv.__version__, fm.layer, fm.n_channels)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / "modelviz_widgets" / "static" / "feature_maps.js").exists():
        pytest.fail("the JS bundle is not built: run `make js` (make test does it first)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "HATCH_JUPYTER_BUILDER_SKIP_NPM": "1"},
    )
    wheels = list(out.glob("modelviz_widgets-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_the_built_js_and_the_demo_weights(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "modelviz_widgets/static/feature_maps.js" in names
    assert "modelviz_widgets/py.typed" in names
    assert any(name.startswith("modelviz_widgets/demo/") and name.endswith(".pt") for name in names)
    assert not any(name.startswith(("js/", "tests/", "notebooks/")) for name in names)


def test_clean_venv_imports_and_displays_without_node(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # torch first and pinned, so the wheel's unpinned dependency resolves to this CPU build.
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, str(wheel), TORCH_PIN], check=True)
    no_node = os.pathsep.join(
        part
        for part in os.environ.get("PATH", "").split(os.pathsep)
        if part
        and shutil.which("node", path=part) is None
        and shutil.which("npm", path=part) is None
    )
    result = subprocess.run(
        [str(python), "-c", SMOKE],
        cwd=tmp_path,
        env={"PATH": no_node, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")
