"""Static HTML export opened from a file:// URL in Chromium: no server, no kernel, no network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
import torch
from torch import nn

import modelviz_widgets as mv

from .chromium import PageLog, launch_chromium, save_failure_artifacts, unexplained_errors
from .lab_server import require_built_js

pytestmark = pytest.mark.browser

HOSTILE = "</script><img src=x onerror=alert(1)>"


class OpenPage:
    """One Chromium page with its console log, every request it made and every dialog it opened."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.log = PageLog()
        self.log.attach(page)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path) -> None:
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("#mvx-root:not([data-mv-export='loading'])", timeout=30_000)
        assert self.page.get_attribute("#mvx-root", "data-mv-export") == "ready"
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('[data-mv-widget]')]"
            ".every((el) => el.dataset.mvState === 'ready')",
            timeout=30_000,
        )

    def offline(self) -> list[str]:
        """Requests that were not for the file itself or a module of it (blob:)."""
        return [url for url in self.requests if not url.startswith(("file:", "blob:", "data:"))]


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    require_built_js(("feature_maps.js", "export_runtime.js"))
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def tab(browser: Any, request: pytest.FixtureRequest) -> Iterator[OpenPage]:
    page = OpenPage(browser.new_page())
    yield page
    report = getattr(request.node, "mv_report_call", None)
    if report is not None and report.failed:
        save_failure_artifacts(page.page, page.log, request.node.nodeid)
    page.page.close()


def fm_state(page: Any, condition: str) -> None:
    """Wait until the FeatureMaps root satisfies a JS condition on `root`."""
    page.wait_for_function(
        f"() => {{ const root = document.querySelector('[data-mv-widget=FeatureMaps]'); "
        f"return {condition}; }}",
        timeout=10_000,
    )


def test_feature_maps_scrub_from_frames_and_kernel_controls_say_so(tab, tmp_path):
    images, _ = mv.demo.load_digits("test")
    fm = mv.FeatureMaps(mv.demo.digits_cnn(), images[:4])
    assert fm.n_channels == 8
    path = mv.export_html(fm, tmp_path / "fm.html", frames={"channel": range(4)})
    tab.open(path)
    page = tab.page
    root = page.locator("[data-mv-widget=FeatureMaps]")
    error = root.locator(".mvz-error")
    first = root.get_attribute("data-mv-seq")
    channel = page.locator("[data-mv-control=channel]")
    channel.focus()
    page.keyboard.press("ArrowRight")
    fm_state(page, f"root.dataset.mvSeq !== '{first}' && root.dataset.mvState === 'ready'")
    assert channel.input_value() == "1"
    assert page.get_by_text("channel 1", exact=True).count() == 1
    second = root.get_attribute("data-mv-seq")
    # Back to channel 0: the state as exported, drawn again.
    page.keyboard.press("ArrowLeft")
    fm_state(page, f"root.dataset.mvSeq === '{first}'")
    page.keyboard.press("ArrowRight")
    fm_state(page, f"root.dataset.mvSeq === '{second}'")
    # Channel 7 was not recorded: said in the view, the slider back on what is drawn (1).
    page.keyboard.press("End")
    fm_state(page, "root.dataset.mvState === 'error'")
    assert "this control needs the live kernel" in error.text_content()
    assert channel.input_value() == "1"
    assert root.get_attribute("data-mv-seq") == second
    # A recorded value clears the notice again.
    page.keyboard.press("ArrowLeft")
    fm_state(page, f"root.dataset.mvState === 'ready' && root.dataset.mvSeq === '{first}'")
    assert error.is_hidden()
    # A layer change needs the kernel too.
    layer = page.locator("[data-mv-control=layer]")
    before = layer.input_value()
    layer.select_option(index=2)
    fm_state(page, "root.dataset.mvState === 'error'")
    assert "this control needs the live kernel (layer)" in error.text_content()
    assert layer.input_value() == before
    assert unexplained_errors(tab.log) == []
    assert tab.offline() == []


def test_boxes_figures_and_hostile_strings(tab, tmp_path):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    hidden = mv.HiddenStates(lstm, torch.randn(1, 4, 3), tokens=[["ok", HOSTILE, "<!--", "b"]])
    filters = mv.Filters(mv.demo.digits_cnn())
    box = ipywidgets.VBox([
        ipywidgets.HTML(f"<b>bold</b>{HOSTILE}"),
        ipywidgets.HBox([hidden, ipywidgets.IntSlider(3, description="n")]),
        filters,
        ipywidgets.Output(),
    ])  # fmt: skip
    frames = {filters: {"layer": ["features.conv2"]}}
    tab.open(mv.export_html(box, tmp_path / "box.html", title=HOSTILE, frames=frames))
    page = tab.page
    assert page.title() == HOSTILE
    assert page.locator("img").count() == 0 and tab.dialogs == []
    assert page.locator(".mvx-text").first.text_content() == f"<b>bold</b>{HOSTILE}"
    assert page.locator("b").count() == 0
    assert page.get_by_text(HOSTILE, exact=True).count() >= 1  # a token, drawn as text
    figures = page.locator("svg[data-mv-figure]")
    assert figures.count() == len(filters.figures)
    assert page.locator("[data-mv-mark=Scatter] circle").count() == filters.core.n_filters
    assert page.locator("[data-mv-mark=Bars] rect").count() > 0
    assert page.locator("svg[data-mv-figure] [data-mv-axis] text").count() > 0
    slider = page.locator("[data-mv-export-control=IntSlider] input[type=range]")
    assert slider.is_disabled() and slider.input_value() == "3"
    assert "Output" in page.locator("[data-mv-export-unknown]").text_content()
    # The recorded layer redraws the view and the composite's figures: 16 filters in the scatter.
    page.locator("[data-mv-widget=Filters] [data-mv-control=layer]").select_option("features.conv2")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-mv-mark=Scatter] circle').length === 16"
    )
    assert page.get_attribute("[data-mv-widget=Filters]", "data-mv-state") == "ready"
    assert unexplained_errors(tab.log) == []
    assert tab.offline() == []


def test_training_monitor_history_is_replayed_without_a_kernel(tab, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = mv.TrainingMonitor(model, every=2)
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 2, (16,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor.step(loss.item())
    # The loss curve follows the steps at most twice a second, on the running event loop (here
    # Playwright's): let it run until the last step is drawn.
    deadline = time.monotonic() + 5
    while len(monitor.current["loss_0"]) < 20 and time.monotonic() < deadline:
        tab.page.wait_for_timeout(50)
    assert len(monitor.current["loss_0"]) == 20
    tab.open(mv.export_html(monitor, tmp_path / "tm.html"))
    page = tab.page
    # The history reaches the view only through the replayed answer to its sync request.
    page.wait_for_function(
        "() => document.querySelector('[data-mv-widget=TrainingMonitor]').textContent"
        ".includes('step 18')"
    )
    assert page.locator("[data-mv-mark=Lines] path").count() == 1
    assert unexplained_errors(tab.log) == []
    assert tab.offline() == []


class Tagger(nn.Module):
    """Embedding, LSTM and self-attention: a recurrent and an attention layer for the Explorer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 16)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embed(ids))
        mixed, _ = self.attn(states, states, states)
        return self.head(mixed.mean(dim=1))


def shown_views(page: Any) -> list[str]:
    names = page.eval_on_selector_all(
        ".mvx-box [data-mv-widget], [data-mv-widget]", "els => els.map(e => e.dataset.mvWidget)"
    )
    return sorted({name for name in names if name != "Explorer"})


def click_layer(tab: OpenPage, layer: str, widget: str) -> None:
    tab.page.click(f'[data-mv-widget=Explorer] .mvz-node[data-mv-layer="{layer}"]')
    tab.page.wait_for_selector(
        f'[data-mv-widget="{widget}"][data-mv-state="ready"]', timeout=15_000
    )


def test_exported_explorers_show_their_views_offline(tab: OpenPage, tmp_path: Path) -> None:
    """The Explorer of a CNN and of a sequence model, exported with frames for some layers: the
    page shows the views as they were, and picking a recorded layer in the tree shows its view,
    with no kernel, no server, no request off the file, no console error."""
    torch.manual_seed(0)
    model = mv.demo.digits_cnn()
    images, labels = mv.demo.load_digits("test")
    with mv.Explorer(model, images[:6], labels=labels[:6]) as explorer:
        path = mv.export_html(
            explorer, tmp_path / "explorer.html",
            frames={explorer: {"layer": ["features.conv1", "features.conv2", "classifier.fc1"]}},
        )  # fmt: skip
    tab.open(path)
    assert {"FeatureMaps", "Filters"} <= set(shown_views(tab.page))
    click_layer(tab, "features.conv2", "FeatureMaps")
    assert tab.page.input_value('[data-mv-widget=FeatureMaps] [data-mv-control="layer"]') == (
        "features.conv2"
    )
    assert tab.page.locator("[data-mv-widget=Explorer] .mvz-thumb").count() == 6
    click_layer(tab, "classifier.fc1", "FeatureMaps")
    assert "Filters" not in shown_views(tab.page)  # a linear layer has no filter view

    ids = torch.randint(0, 12, (2, 5), generator=torch.Generator().manual_seed(0))
    tokens = [[f"w{int(i)}" for i in row] for row in ids]
    tokens[0][0] = HOSTILE  # a token is text, never markup
    with mv.Explorer(Tagger(), ids, tokens=tokens, layer="lstm") as explorer:
        path = mv.export_html(
            explorer, tmp_path / "sequences.html", frames={explorer: {"layer": ["lstm", "attn"]}}
        )
    tab.open(path)
    assert shown_views(tab.page) == ["HiddenStates"]
    click_layer(tab, "attn", "Attention")
    assert shown_views(tab.page) == ["Attention"]
    click_layer(tab, "lstm", "HiddenStates")
    assert tab.page.locator("img").count() == 0 and tab.dialogs == []
    assert tab.offline() == []
    assert unexplained_errors(tab.log) == []
