"""Every notebook in notebooks/ runs top to bottom in a fresh kernel with no error output.

Each notebook executes with nbclient in a kernel started from this interpreter (the venv's python),
with ``notebooks/`` as its working directory and this checkout first on its import path. Widget
state is stored the way a saved notebook keeps it (``store_widget_state``), and checked to hold
every widget that a cell displayed. Executed copies are written under pytest's ``tmp_path`` for
inspection; the notebooks themselves are never modified.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

CELL_TIMEOUT_S = 120
KERNEL_NAME = "python3"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def kernel_env() -> dict[str, str]:
    """The test's environment, with this checkout first on the kernel's import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # A kernel that cannot reach the network must not try to (pip, hub downloads, telemetry).
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def execute(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run ``notebook`` in place in a fresh python3 kernel whose cwd is notebooks/."""
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        kernel_name=KERNEL_NAME,
        allow_errors=True,  # collect every error below instead of stopping at the first
        store_widget_state=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    # Extra keyword arguments reach KernelManager.start_kernel; "python" in the kernelspec's argv is
    # replaced by sys.executable there, so the kernel runs on this interpreter.
    client.execute(env=kernel_env())
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, output)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


def problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Error outputs and tracebacks printed to stderr, one readable entry per occurrence."""
    found = []
    for index, output in outputs(notebook):
        if output.get("output_type") == "error":
            traceback = ANSI_ESCAPE.sub("", "\n".join(output.get("traceback", [])))
            found.append(
                f"cell {index}: {output.get('ename')}: {output.get('evalue')}\n{traceback}"
            )
        elif output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = ANSI_ESCAPE.sub("", output.get("text", ""))
            if "Traceback" in text:
                found.append(f"cell {index} stderr:\n{text}")
    return found


def displayed_widget_ids(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        output["data"][WIDGET_VIEW]["model_id"]
        for _, output in outputs(notebook)
        if WIDGET_VIEW in output.get("data", {})
    ]


def notebook_params() -> list[Any]:
    if not NOTEBOOKS:
        # An empty parametrization would only be skipped; a missing notebook set must fail.
        return [pytest.param(None, id="no-notebooks-found")]
    return [pytest.param(path, id=path.name) for path in NOTEBOOKS]


@pytest.mark.parametrize("path", notebook_params())
def test_notebook_runs_without_errors(path: Path | None, tmp_path: Path) -> None:
    assert path is not None, f"no notebooks found in {NOTEBOOK_DIR}"
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    execute(notebook)
    print(f"{path.name}: {time.perf_counter() - started:.1f} s")
    nbformat.write(notebook, tmp_path / path.name)

    found = "\n\n".join(problems(notebook))
    assert not found, f"{path.name} (executed copy: {tmp_path / path.name}):\n\n{found}"
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code_cells), "a code cell did not run"

    shown = displayed_widget_ids(notebook)
    if shown:
        state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        missing = [model_id for model_id in shown if model_id not in state]
        assert not missing, f"{path.name}: displayed widgets without stored state: {missing}"
        assert all(state[model_id].get("state") for model_id in shown)


def test_notebooks_are_stored_without_outputs() -> None:
    """Notebooks are committed clean: outputs belong to whoever runs them."""
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                assert not cell.get("outputs"), f"{path.name} cell {index} has stored outputs"
                assert cell.get("execution_count") is None, f"{path.name} cell {index} ran"


def test_kernel_runs_on_this_interpreter_in_the_notebook_dir() -> None:
    probe = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os, sys, modelviz_widgets\n"
                "print(sys.executable)\nprint(sys.prefix)\nprint(os.getcwd())\n"
                "print(modelviz_widgets.__file__)"
            )
        ]
    )
    execute(probe)
    (output,) = probe.cells[0].outputs
    assert output.get("name") == "stdout", output
    executable, prefix, cwd, package = output["text"].splitlines()
    print("kernel sys.executable:", executable)
    # sys.prefix tells a venv apart even where its python is a symlink to the system one.
    assert prefix == sys.prefix
    assert Path(executable).parent == Path(sys.executable).parent
    assert Path(cwd).resolve() == NOTEBOOK_DIR.resolve()
    assert Path(package).resolve().is_relative_to(REPO_ROOT)
