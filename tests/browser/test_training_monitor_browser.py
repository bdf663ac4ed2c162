"""TrainingMonitor in a real JupyterLab: the digits CNN trained in a notebook cell while Chromium
watches. The view draws its strips, curves and table from the history it holds; while a training
cell is still running it keeps receiving steps and redraws for a layer choice and a scrub at once;
with ``monitor.run()`` the kernel stays free and a FeatureMaps on the same model redraws between
training steps; a NaN loss shows up as an alert; layer names holding markup stay literal text."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .drivers import FeatureMapsView
from .jupyter import (
    LabSession,
    Notebook,
    WidgetView,
    drawn,
    unexplained_errors,
    write_notebook,
)
from .page_scripts import RUN_CELL_JS

pytestmark = pytest.mark.browser

SETUP = """\
import time
import torch
import modelviz_widgets as mv

torch.manual_seed(0)
images, labels = mv.demo.load_digits("train")
model = mv.demo.digits_cnn()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def train_steps(monitor, steps, pause=0.0):
    for i in range(steps):
        start = (i * 64) % (len(images) - 64)
        x, y = images[start : start + 64], labels[start : start + 64]
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor.step(loss=loss, accuracy=(out.argmax(1) == y).float().mean())
        if pause:
            time.sleep(pause)
"""
MONITOR = "monitor = mv.TrainingMonitor(model, every=5)\nmonitor"
FIRST_TRAINING = "train_steps(monitor, 60)"
FIRST_STEPS = 60
EVERY = 5
LAYERS = [
    "features.conv1", "features.relu1", "features.conv2", "features.relu2",
    "classifier.fc1", "classifier.relu", "classifier.fc2",
]  # fmt: skip
HOSTILE = "<img src=x onerror=alert(1)>"
NOT_MEASURED = "\N{EN DASH}"


class MonitorView(WidgetView):
    """One TrainingMonitor root of the notebook."""

    def __init__(self, notebook: Notebook, nth: int = 0) -> None:
        super().__init__(notebook, notebook.widget_root("TrainingMonitor", nth))

    def count(self, what: str) -> int:
        return int(self.root.get_attribute(f"data-mv-{what}") or 0)

    def wait_for(self, script: str, arg: Any = None, timeout: float = 30.0) -> None:
        """Wait until ``script`` (called with the root and ``arg``) is true."""
        self.page.wait_for_function(
            f"([el, arg]) => ({script})(el, arg)",
            arg=[self.root.element_handle(), arg], timeout=timeout * 1000, polling="raf",
        )  # fmt: skip

    def wait_count(self, what: str, at_least: int, timeout: float = 30.0) -> int:
        try:
            self.wait_for(
                f"(el, n) => Number(el.getAttribute('data-mv-{what}')) >= n", at_least, timeout
            )
        except Exception as error:
            raise AssertionError(
                f"data-mv-{what} stayed at {self.count(what)} (waited for {at_least})"
            ) from error
        return self.count(what)

    def wait_strips(self, attribute: str, value: str, timeout: float = 30.0) -> None:
        """Wait until the strips canvas shows ``value`` as its ``data-mv-<attribute>``."""
        key = "mvLayer" if attribute == "layer" else "mvMarked"
        script = f"(el, v) => el.querySelector('[data-mv-part=strips]').dataset.{key} === v"
        self.wait_for(script, value, timeout)

    def strips_show(self, attribute: str) -> str:
        return str(self.part("strips").get_attribute(f"data-mv-{attribute}"))

    def set_scrub(self, value: int) -> None:
        self.control("scrub").evaluate(
            """(el, value) => { el.value = String(value);
                 el.dispatchEvent(new Event('input', {bubbles: true}));
                 el.dispatchEvent(new Event('change', {bubbles: true})); }""",
            value,
        )

    def table(self) -> dict[str, list[str]]:
        rows = self.part("table").locator("tbody tr")
        out = {}
        for index in range(rows.count()):
            cells = [str(t) for t in rows.nth(index).locator("td").all_text_contents()]
            out[cells[0]] = cells
        return out

    def alerts(self) -> list[str]:
        return [str(t) for t in self.part("alerts").locator("li").all_text_contents()]


def start_cell(notebook: Notebook, code: str) -> None:
    """Run ``code`` in a new cell without waiting for it to finish."""
    notebook.wait_settled(60)
    notebook.page.evaluate(RUN_CELL_JS, {"path": notebook.path, "code": code, "timeout": 200})


def busy(notebook: Notebook) -> bool:
    return notebook.kernel_state().startswith("busy")


@pytest.fixture(scope="module")
def tm_notebook(lab: LabSession, tmp_path_factory: pytest.TempPathFactory) -> Notebook:
    path = tmp_path_factory.mktemp("training") / "training_monitor_browser.ipynb"
    write_notebook(path, [SETUP, MONITOR, FIRST_TRAINING])
    return lab.run_notebook(path)


@pytest.fixture(scope="module")
def tm_view(tm_notebook: Notebook) -> MonitorView:
    view = MonitorView(tm_notebook, 0)
    view.root.scroll_into_view_if_needed()
    tm_notebook.wait_ready(view.root, timeout=60)
    view.wait_count("steps", FIRST_STEPS, timeout=30)
    return view


def test_monitor_renders_strips_curves_and_table(tm_view: MonitorView) -> None:
    notebook = tm_view.notebook
    assert tm_view.root.get_attribute("data-mv-state") == "ready"
    assert tm_view.count("steps") == FIRST_STEPS
    assert tm_view.count("samples") == FIRST_STEPS // EVERY
    assert notebook.seq(tm_view.root) >= 1
    canvases = tm_view.canvases()
    for part in ("strips", "norms"):
        assert part in canvases and drawn(canvases[part]), f"{part}: {canvases.get(part)}"
    # Three strips for a conv layer (weight, weight grad, bias; bias grad too): taller than one.
    assert canvases["strips"]["height"] >= 3 * 60
    options = tm_view.control("layer").evaluate("(s) => Array.from(s.options).map(o => o.value)")
    assert options == LAYERS
    assert tm_view.strips_show("layer") == "features.conv1"
    slider = tm_view.control("scrub")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "11")
    assert tm_view.part("latest").is_checked()
    status = tm_view.part("status").inner_text()
    assert status.startswith(f"step {FIRST_STEPS - 1} · loss "), status
    table = tm_view.table()
    assert list(table) == LAYERS
    # The table shows the newest sample; its numbers are the kernel's (read back from the history).
    norms = notebook.ask(
        "s = monitor.history.samples[-1]\n"
        "print(s.step, *[f'{v:.6g}' for v in (s.norms[0, 0], s.norms[0, 2], s.activations[1, 3])])"
    ).split()
    assert tm_view.part("table").locator("..").locator(".mvz-title").inner_text() == (
        f"layers at step {norms[0]}"
    )
    weight, grad = float(table["features.conv1"][1]), float(table["features.conv1"][2])
    assert weight == pytest.approx(float(norms[1]), rel=5e-3)
    assert grad == pytest.approx(float(norms[2]), rel=5e-3)
    dead = float(table["features.relu1"][4].rstrip(" %")) / 100
    assert dead == pytest.approx(float(norms[3]), abs=1e-3)
    assert table["features.relu1"][1] == NOT_MEASURED  # an activation has no weight
    # A click on a row picks that layer, in the view and in Python.
    tm_view.part("table").locator('tr[data-mv-layer="features.conv2"]').click()
    tm_view.wait_strips("layer", "features.conv2")
    assert tm_view.control("layer").input_value() == "features.conv2"
    assert notebook.ask("print(monitor.layer)") == "features.conv2"


def test_view_follows_and_answers_while_the_training_cell_runs(tm_view: MonitorView) -> None:
    notebook = tm_view.notebook
    tm_view.control("layer").select_option("features.conv1")
    tm_view.wait_strips("layer", "features.conv1")
    start = tm_view.count("steps")
    began = time.monotonic()
    start_cell(notebook, "train_steps(monitor, 150, pause=0.1)")  # about 15 s or more
    grown = tm_view.wait_count("steps", start + 10, timeout=30)
    assert busy(notebook), "the training cell ended before the checks"
    # A layer picked in the browser is drawn at once, with no answer from the busy kernel.
    before = tm_view.canvases()["strips"]["hash"]
    picked = time.monotonic()
    tm_view.control("layer").select_option("classifier.fc1")
    tm_view.wait_strips("layer", "classifier.fc1", timeout=5)
    layer_ms = (time.monotonic() - picked) * 1000
    assert tm_view.canvases()["strips"]["hash"] != before
    # Scrubbing back pins a sample: the marker and the table move to it.
    before = tm_view.canvases()["strips"]["hash"]
    tm_view.set_scrub(2)
    tm_view.wait_strips("marked", "2", timeout=5)
    assert tm_view.canvases()["strips"]["hash"] != before
    assert not tm_view.part("latest").is_checked()
    title = tm_view.part("table").locator("..").locator(".mvz-title").inner_text()
    assert title == f"layers at step {2 * EVERY}"
    later = tm_view.wait_count("steps", grown + 5, timeout=20)
    # Back to following the newest sample.
    tm_view.part("latest").check()
    tm_view.wait_for(
        "(el) => el.querySelector('[data-mv-part=strips]').dataset.mvMarked"
        " === String(Number(el.dataset.mvSamples) - 1)", timeout=5,
    )  # fmt: skip
    assert busy(notebook), "the training cell ended before the checks"
    elapsed = time.monotonic() - began
    notebook.wait_settled(120)
    assert tm_view.wait_count("steps", start + 150, timeout=10) == start + 150
    print(f"live: {grown - start} -> {later - start} steps seen while running ({elapsed:.1f} s); "
          f"layer pick drawn in {layer_ms:.0f} ms")  # fmt: skip
    assert notebook.ask("print(monitor.layer, monitor.core.scrub)") == "classifier.fc1 -1"


def test_background_training_leaves_feature_maps_live(tm_view: MonitorView) -> None:
    notebook = tm_view.notebook
    notebook.run_cell("fm = mv.FeatureMaps(model, images[:4])\nfm", timeout=60)
    fm = FeatureMapsView(notebook, nth=0, python_name="fm")
    fm.root.scroll_into_view_if_needed()
    fm.wait_ready(timeout=60)
    start = tm_view.count("steps")
    notebook.run_cell("thread = monitor.run(train_steps, monitor, 200, pause=0.05)", timeout=30)
    tm_view.wait_count("steps", start + 5, timeout=30)
    before = fm.seq()
    sample = fm.step_channel(timeout=10)
    assert sample.ms is not None, f"FeatureMaps did not redraw while training: {sample.detail}"
    assert fm.seq() > before
    # A layer change runs the model again: it gets its turn between two training steps.
    options = fm.layer_options()
    current = fm.control("layer").input_value()
    other = next(name for name in options if name != current)
    layer_seq = fm.set_layer(other, timeout=30)
    assert layer_seq > before
    assert notebook.ask("print(monitor.running, thread.is_alive())") == "True True"
    during = tm_view.count("steps")
    assert start + 5 <= during < start + 200
    notebook.ask("monitor.wait(timeout=120)\nprint(monitor.running)", timeout=150)
    assert tm_view.wait_count("steps", start + 200, timeout=10) == start + 200
    tm_view.wait_for("(el) => !el.querySelector('[data-mv-part=status]').textContent"
                     ".includes('running')", timeout=10)  # fmt: skip
    print(f"background: FeatureMaps channel redraw {sample.ms:.0f} ms, "
          f"{during - start} of 200 steps done when checked")  # fmt: skip
    notebook.run_cell("fm.close()")


def test_nan_loss_raises_an_alert(tm_view: MonitorView) -> None:
    notebook = tm_view.notebook
    step = int(notebook.ask("print(monitor.history.steps[-1] + 1)"))
    notebook.run_cell("monitor.step(loss=float('nan'))")
    expected = f"step {step} · loss: the loss is nan at step {step}"
    tm_view.wait_for(
        "(el, text) => el.querySelector('[data-mv-part=alerts] li')?.textContent === text",
        expected, timeout=10,
    )  # fmt: skip
    assert tm_view.alerts()[0] == expected
    assert tm_view.part("status").inner_text().startswith(f"step {step}")


def test_layer_names_with_markup_render_as_text(tm_notebook: Notebook) -> None:
    code = (
        "hostile = torch.nn.Sequential()\n"
        "hostile.add_module('<b>x</b>', torch.nn.Linear(4, 8))\n"
        f"hostile.add_module({HOSTILE!r}, torch.nn.ReLU())\n"
        "hostile.add_module('out', torch.nn.Linear(8, 2))\n"
        "hm = mv.TrainingMonitor(hostile, every=1)\n"
        "display(hm)"
    )
    tm_notebook.run_cell(code, timeout=60)
    view = MonitorView(tm_notebook, 1)
    view.root.scroll_into_view_if_needed()
    tm_notebook.wait_ready(view.root, timeout=30)
    tm_notebook.run_cell(
        "hopt = torch.optim.SGD(hostile.parameters(), lr=0.1)\n"
        "for _ in range(4):\n"
        "    hloss = hostile(torch.randn(16, 4)).pow(2).mean()\n"
        "    hopt.zero_grad(); hloss.backward(); hopt.step(); hm.step(loss=hloss)"
    )
    view.wait_count("samples", 4, timeout=10)
    assert list(view.table()) == ["<b>x</b>", HOSTILE, "out"]
    texts = view.control("layer").evaluate("(s) => Array.from(s.options).map(o => o.textContent)")
    assert texts == ["<b>x</b>", HOSTILE, "out"]
    assert view.strips_show("layer") == "<b>x</b>"
    assert "distributions of <b>x</b>" in view.part("strips").locator("..").inner_text()
    assert view.root.locator("b, img").count() == 0
    assert tm_notebook.page.locator(".jp-OutputArea img[src='x']").count() == 0
    view.part("table").locator("tbody tr").nth(1).click()
    view.wait_strips("layer", HOSTILE, timeout=5)
    tm_notebook.run_cell("hm.close()")


RUN_COLOURS_JS = """
(canvas, colours) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return colours.map(([r, g, b]) => {
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40
          && Math.abs(data[i + 2] - b) < 40) n++;
    }
    return n;
  });
}
"""

OVERLAID = """\
import pathlib, tempfile
logdir = pathlib.Path(tempfile.mkdtemp())
for seed, lr in [(1, 0.05), (2, 0.3)]:
    torch.manual_seed(seed)
    run_model = mv.demo.digits_cnn()
    run_opt = torch.optim.SGD(run_model.parameters(), lr=lr)
    path = logdir / f"lr{lr}.sqlite"
    recorder = mv.TrainingMonitor(run_model, every=5, log=path, name=f"lr {lr}")
    for i in range(30):
        out = run_model(images[i * 32 : i * 32 + 32])
        run_loss = torch.nn.functional.cross_entropy(out, labels[i * 32 : i * 32 + 32])
        run_opt.zero_grad(); run_loss.backward(); run_opt.step(); recorder.step(loss=run_loss)
    recorder.close()
loaded = mv.TrainingMonitor.load([logdir / "lr0.05.sqlite", logdir / "lr0.3.sqlite"])
display(loaded)
"""


def test_loaded_runs_overlay_in_their_colours(tm_notebook: Notebook) -> None:
    tm_notebook.run_cell(OVERLAID, timeout=90)
    view = MonitorView(tm_notebook, -1)
    view.root.scroll_into_view_if_needed()
    tm_notebook.wait_ready(view.root, timeout=30)
    view.wait_count("samples", 6, timeout=10)
    assert view.count("steps") == 30
    status = view.part("status").inner_text()
    assert status.startswith("step 29 · loss ") and status.endswith(" · finished · 2 runs"), status
    legend = view.root.locator(".mvz-tm-legend span").all_text_contents()
    assert legend == ["lr 0.05", "lr 0.3"]
    view.control("layer").select_option("classifier.fc1")
    view.wait_strips("layer", "classifier.fc1", timeout=5)
    norms = view.part("norms")
    blue, orange = norms.evaluate(RUN_COLOURS_JS, [[31, 119, 180], [255, 127, 14]])
    assert blue > 20 and orange > 20, (blue, orange)
    tm_notebook.run_cell("loaded.close()")


SCALE = """\
big_layers = []
for _ in range(20):
    big_layers += [torch.nn.Linear(32, 32), torch.nn.ReLU()]
big = torch.nn.Sequential(*big_layers)
big_opt = torch.optim.SGD(big.parameters(), lr=0.01)
big_x = torch.randn(64, 32)
bm = mv.TrainingMonitor(big, every=10)
display(bm)
"""
SCALE_TRAIN = """\
for _ in range(3000):
    big_loss = big(big_x).pow(2).mean()
    big_opt.zero_grad(); big_loss.backward(); big_opt.step(); bm.step(loss=big_loss)
"""
TIMED_JS = """
async (el, [what, value]) => {
  const strips = el.querySelector('[data-mv-part=strips]');
  const control = el.querySelector(`[data-mv-control=${what}]`);
  const attribute = what === 'layer' ? 'mvLayer' : 'mvMarked';
  const start = performance.now();
  control.value = String(value);
  control.dispatchEvent(new Event('input', {bubbles: true}));
  control.dispatchEvent(new Event('change', {bubbles: true}));
  while (strips.dataset[attribute] !== String(value)) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
    if (performance.now() - start > 5000) return -1;
  }
  return performance.now() - start;
}
"""


def test_thousands_of_steps_and_forty_layers_stay_quick(tm_notebook: Notebook) -> None:
    tm_notebook.run_cell(SCALE, timeout=60)
    view = MonitorView(tm_notebook, -1)
    view.root.scroll_into_view_if_needed()
    tm_notebook.wait_ready(view.root, timeout=30)
    began = time.monotonic()
    tm_notebook.run_cell(SCALE_TRAIN, timeout=300)
    trained = time.monotonic() - began
    assert view.wait_count("steps", 3000, timeout=20) == 3000
    assert view.count("samples") == 300
    names = view.control("layer").evaluate("(s) => Array.from(s.options).map(o => o.value)")
    assert len(names) == 40 and view.part("table").locator("tbody tr").count() == 40
    layer_ms = []
    for index in range(10):
        name = names[(2 * index + 2) % 40]
        layer_ms.append(view.root.evaluate(TIMED_JS, ["layer", name]))
    scrub_ms = [view.root.evaluate(TIMED_JS, ["scrub", value]) for value in range(0, 300, 30)]
    assert -1 not in layer_ms + scrub_ms
    layer_ms.sort()
    scrub_ms.sort()
    print(f"scale: 3000 steps, 300 samples x 40 layers trained in {trained:.1f} s; "
          f"layer switch median {layer_ms[5]:.0f} ms (max {layer_ms[-1]:.0f}), "
          f"scrub median {scrub_ms[5]:.0f} ms (max {scrub_ms[-1]:.0f})")  # fmt: skip
    assert layer_ms[5] < 150 and scrub_ms[5] < 150
    tm_notebook.run_cell("bm.close()")


def test_no_errors_in_outputs_or_console(tm_notebook: Notebook, lab: LabSession) -> None:
    tm_notebook.run_cell("monitor.close()")
    tm_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
