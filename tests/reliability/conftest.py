"""Browser fixtures for the reliability suite, and the one notebook its browser tests share.

The fixtures are those of tests/browser/conftest.py, imported (not copied): ``playwright`` (the one
``sync_playwright()`` of the process: the sync API refuses a second one inside the first's loop),
``lab`` (one JupyterLab server, one Chromium page), ``failure_artifacts`` (screenshot and console
log on failure) and the report hook it needs. tests/browser/conftest.py shares the first
``playwright`` and ``lab`` started, so ``pytest tests/reliability tests/browser`` runs one of each.

The floods and markup tests run in one notebook (:data:`CELLS`); the kernel-restart tests use the
same notebook and are moved after them (a restart ends every widget of it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (  # noqa: F401  (fixtures and hook, registered by import)
    failure_artifacts,
    lab,
    playwright,
    pytest_runtest_makereport,
)
from tests.browser.jupyter import LabSession, Notebook, write_notebook

# Markup a hostile (or merely unlucky) user string may hold; every view must show it as text.
HOSTILE = ["</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>"]

SETUP = f"""\
import torch
from torch import nn
import modelviz_widgets as mv

H = {HOSTILE!r}
torch.manual_seed(0)


class Hostile(nn.Module):
    \"\"\"A CNN whose submodules have markup names (ModuleDict keys, add_module).\"\"\"

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleDict({{H[1]: nn.Conv2d(1, 16, 3, padding=1), H[2]: nn.ReLU()}})
        self.add_module(H[0], nn.Conv2d(16, 8, 3, padding=1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        for block in self.blocks.values():
            x = block(x)
        return self.head(getattr(self, H[0])(x))


def hook_count(model):
    \"\"\"Forward, forward-pre and backward hooks on every module of ``model``.\"\"\"
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


hostile = Hostile().eval()
images = torch.randn(12, 1, 12, 12)
labels = torch.arange(12) % 3
FLOOD_LAYER = "blocks." + H[1]
"""

# The kernel records what it computed: every _apply of the FeatureMaps (one per published update)
# and every state message the Explorer's core received from the browser.
FEATURE_MAPS = """\
fm = mv.FeatureMaps(hostile, images, layer=FLOOD_LAYER)
fm_applied = []
_fm_apply = fm._apply
def _count_apply(updates):
    fm_applied.append(sorted(updates))
    return _fm_apply(updates)
fm._apply = _count_apply
fm
"""

EXPLORER = """\
explorer = mv.Explorer(hostile, images, labels=labels, class_names=H)
explorer_states = []
_explorer_set_state = explorer.core.set_state
def _count_explorer(state):
    explorer_states.append(dict(state))
    return _explorer_set_state(state)
explorer.core.set_state = _count_explorer
explorer
"""

SEQUENCES = """\
lstm = nn.LSTM(3, 4, batch_first=True)
hidden = mv.HiddenStates(lstm, torch.randn(1, 4, 3), tokens=[[H[0], H[1], H[2], "ok"]])
encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1).eval()
attention = mv.Attention(encoder, torch.randn(1, 4, 8), tokens=[H[0], H[1], H[2], "ok"])
display(hidden, attention)
"""

PROBE_AND_MONITOR = """\
probe = mv.LayerProbe(hostile, images, labels, layers=[FLOOD_LAYER, H[0]])
monitored = Hostile()  # a monitor keeps its hooks while it watches: its own model
monitor = mv.TrainingMonitor(monitored, every=1)
for i in range(3):
    monitor.step(1.0 / (i + 1), **{H[1]: 0.5 + i, H[2]: 0.1 * i, H[0]: 1.0})
display(probe, monitor)
"""

CELLS = [SETUP, FEATURE_MAPS, EXPLORER, SEQUENCES, PROBE_AND_MONITOR]
CELL_OF = {"FeatureMaps": 1, "Explorer": 2, "HiddenStates": 3, "Attention": 3}


@pytest.fixture(scope="session")
def reliability_notebook(
    lab: LabSession,  # noqa: F811  (the imported fixture, requested by name)
    tmp_path_factory: pytest.TempPathFactory,
) -> Notebook:
    """The suite's notebook, opened in JupyterLab and run top to bottom without error outputs."""
    path = write_notebook(tmp_path_factory.mktemp("reliability") / "reliability.ipynb", CELLS)
    return lab.run_notebook(path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    """Run the kernel-restart tests right after the other tests of this directory (a restart ends
    the notebook's widgets); everything else keeps its order."""
    here = Path(__file__).parent

    def where(item: Any) -> Path:
        return Path(str(item.fspath))

    kernel = [item for item in items if where(item) == here / "test_kernel_browser.py"]
    rest = [item for item in items if where(item) != here / "test_kernel_browser.py"]
    ours = [index for index, item in enumerate(rest) if where(item).parent == here]
    at = ours[-1] + 1 if ours else len(rest)
    items[:] = rest[:at] + kernel + rest[at:]
