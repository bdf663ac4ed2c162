"""Attention in a real JupyterLab: a notebook generated here (tiny random BERT models, nothing
downloaded) run in Chromium. The overview draws every thumbnail; a click on one opens its matrix in
one message and Python follows; the layer and head sliders redraw; the head view draws its lines and
its head chips write `shown_heads`; tokens holding markup render as literal text; the text box
re-runs the model; and a 512-token, 12-layer, 12-head input draws every thumbnail within the byte
budget."""

from __future__ import annotations

import time

import pytest

from .jupyter import (
    LabSession,
    Notebook,
    WidgetView,
    drawn,
    unexplained_errors,
    write_notebook,
)

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"
WORDS = ["[CLS]", "the", "cat", HOSTILE, "sat", "on", "<b>x</b>", "mat", ".", "[SEP]"]
LAYERS, HEADS = 3, 4
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "dog",
    ".",
]

# Overview geometry (defaults of js/src/lib/attention_overview.ts): label margins and gap.
LEFT, TOP, GAP = 30, 16, 4

SETUP = """\
import tempfile, time
import torch
import modelviz_widgets as mv
from transformers import BertConfig, BertModel, BertTokenizer

def tiny_bert(layers, heads, hidden, positions=64, seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden,
                        max_position_embeddings=positions, attn_implementation="eager")
    return BertModel(config).eval()
"""

SMALL = f"""\
small_model = tiny_bert({LAYERS}, {HEADS}, 32)
ids = torch.randint(5, 100, (1, {len(WORDS)}), generator=torch.Generator().manual_seed(1))
attn = mv.Attention(small_model, {{"input_ids": ids}}, tokens={WORDS!r})
attn_states = []
_set_state = attn.set_state
def _counting_set_state(state):
    attn_states.append(sorted(state))
    return _set_state(state)
attn.set_state = _counting_set_state
attn
"""

TEXT = f"""\
vocab_file = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
vocab_file.write("\\n".join({VOCAB!r}))
vocab_file.close()
tokenizer = BertTokenizer(vocab_file.name)
typed = mv.Attention(tiny_bert(2, 2, 16), "the cat sat", tokenizer=tokenizer)
typed
"""

PAIR = """\
pair_ids = torch.tensor([[2, 5, 6, 5, 6, 3], [2, 5, 3, 0, 0, 0]])
pair_inputs = {"input_ids": pair_ids, "attention_mask": (pair_ids != 0).long()}
pair = mv.Attention(tiny_bert(2, 2, 16), pair_inputs)
pair
"""

BIG = """\
big_model = tiny_bert(12, 12, 48, positions=512)
big_ids = torch.randint(5, 100, (1, 512), generator=torch.Generator().manual_seed(2))
big = mv.Attention(big_model, {"input_ids": big_ids})
big
"""


def notebook_cells() -> list[str]:
    return [SETUP, SMALL, TEXT, PAIR]


class AttentionView(WidgetView):
    """One Attention root of the notebook and the Python name of its widget."""

    def thumbnails(self) -> int:
        return int(self.part("overview").get_attribute("data-mv-thumbnails") or 0)

    def click_thumbnail(self, layer: int, head: int, heads: int) -> None:
        canvas = self.part("overview")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None
        cell = (box["width"] - LEFT) / heads - GAP
        x = LEFT + head * (cell + GAP) + GAP / 2 + cell / 2
        y = TOP + layer * (cell + GAP) + GAP / 2 + cell / 2
        canvas.click(position={"x": x, "y": y})

    def set_range(self, trait: str, value: int) -> None:
        self.control(trait).evaluate(
            """(el, value) => { el.value = String(value);
                 el.dispatchEvent(new Event('input', {bubbles: true}));
                 el.dispatchEvent(new Event('change', {bubbles: true})); }""",
            value,
        )


@pytest.fixture(scope="module")
def attn_notebook(lab: LabSession, tmp_path_factory: pytest.TempPathFactory) -> Notebook:
    path = tmp_path_factory.mktemp("attention") / "attention_browser.ipynb"
    write_notebook(path, notebook_cells())
    return lab.run_notebook(path)


@pytest.fixture(scope="module")
def attn_view(attn_notebook: Notebook) -> AttentionView:
    view = AttentionView(attn_notebook, attn_notebook.widget_root("Attention", 0), "attn")
    view.root.scroll_into_view_if_needed()
    attn_notebook.wait_ready(view.root, timeout=60)
    assert view.python("type({w}).__name__") == "Attention", "`attn` is not an Attention"
    return view


def test_notebook_runs_without_error_outputs(attn_notebook: Notebook) -> None:
    attn_notebook.assert_no_error_outputs()


def test_overview_draws_every_thumbnail(attn_view: AttentionView) -> None:
    assert attn_view.root.get_attribute("data-mv-state") == "ready"
    assert attn_view.seq() >= 1
    assert attn_view.python("({w}.n_layers, {w}.n_heads, {w}.length)") == f"({LAYERS}, {HEADS}, 10)"
    assert attn_view.thumbnails() == LAYERS * HEADS
    canvases = attn_view.canvases()
    assert drawn(canvases["overview"]), canvases["overview"]
    assert drawn(canvases["matrix"]), canvases["matrix"]
    # Sliders span the model; one sample: no sample slider; no tokenizer: no text box.
    for trait, top in (("layer", LAYERS - 1), ("head", HEADS - 1)):
        slider = attn_view.control(trait)
        assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", str(top))
    assert not attn_view.control("sample").is_visible()
    assert not attn_view.control("text").is_visible()


def test_thumbnail_click_opens_the_matrix_in_one_message(attn_view: AttentionView) -> None:
    attn_view.control("detail").select_option("lines")
    attn_view.control("mode").select_option("mean")
    attn_view.notebook.wait_ready(attn_view.root, timeout=20)
    assert attn_view.python("({w}.mode, {w}.detail)") == "('mean', 'lines')"
    assert not attn_view.part("matrix").is_visible()
    attn_view.python("attn_states.clear() or ''")
    before = attn_view.seq()
    attn_view.click_thumbnail(2, 3, HEADS)
    attn_view.notebook.wait_seq_after(attn_view.root, before, timeout=20)
    assert (
        attn_view.python("({w}.layer, {w}.head, {w}.mode, {w}.detail)")
        == "(2, 3, 'head', 'matrix')"
    )
    assert attn_view.python("attn_states") == "[['detail', 'head', 'layer', 'mode']]"
    assert attn_view.part("matrix").is_visible()
    title = attn_view.root.locator(".mvz-title", has_text="layer 2").first.inner_text()
    assert title == "layer 2 · head 3"
    assert attn_view.control("layer").input_value() == "2"
    assert attn_view.control("head").input_value() == "3"


def test_layer_and_head_sliders_redraw_and_python_follows(attn_view: AttentionView) -> None:
    for trait, value in (("layer", 0), ("head", 1)):
        before = attn_view.canvases()
        before_seq = attn_view.seq()
        attn_view.set_range(trait, value)
        attn_view.notebook.wait_seq_after(attn_view.root, before_seq, timeout=20)
        assert attn_view.python(f"{{w}}.{trait}") == str(value)
        after = attn_view.canvases()
        assert after["matrix"]["hash"] != before["matrix"]["hash"], (
            f"{trait}: matrix did not change"
        )
        # The outline moved in the overview.
        assert after["overview"]["hash"] != before["overview"]["hash"], f"{trait}: outline stayed"
    before_seq = attn_view.seq()
    sample = attn_view.notebook.key_to_seq(
        attn_view.control("layer"), attn_view.root, "ArrowRight", 10
    )
    assert sample.ms is not None, f"no redraw after the key press: {sample.detail}"
    assert attn_view.seq() > before_seq
    assert attn_view.python("{w}.layer") == "1"
    matrix_meta = attn_view.python("({w}.matrix_meta['layer'], {w}.matrix_meta['head'])")
    assert matrix_meta == "(1, 1)"


def test_lines_view_draws_and_head_chips_write_shown_heads(attn_view: AttentionView) -> None:
    attn_view.control("detail").select_option("lines")
    lines = attn_view.part("lines")
    lines.wait_for(state="visible", timeout=10_000)
    assert drawn(attn_view.canvases()["lines"])
    queries = attn_view.root.locator('[data-mv-part="queries"] span')
    keys = attn_view.root.locator('[data-mv-part="keys"] span')
    assert queries.count() == keys.count() == 10
    k = int(attn_view.python("{w}.lines_meta['k']"))
    every = int(lines.get_attribute("data-mv-lines") or 0)
    assert 0 < every <= HEADS * 10 * k
    chips = attn_view.root.locator('[data-mv-control="shown_heads"]')
    assert chips.count() == HEADS
    chips.nth(0).click()
    attn_view.page.wait_for_function(
        "(el) => el.getAttribute('aria-pressed') === 'false'", arg=chips.nth(0).element_handle()
    )
    assert attn_view.python("{w}.shown_heads") == str(list(range(1, HEADS)))
    fewer = int(lines.get_attribute("data-mv-lines") or 0)
    assert 0 < fewer < every
    # Hovering a query leaves only its lines.
    queries.nth(2).hover()
    attn_view.page.wait_for_function(
        "([el, most]) => Number(el.getAttribute('data-mv-lines')) <= most",
        arg=[lines.element_handle(), (HEADS - 1) * k],
    )
    chips.nth(0).click()
    attn_view.page.mouse.move(0, 0)
    assert attn_view.python("{w}.shown_heads") == str(list(range(HEADS)))
    attn_view.control("detail").select_option("matrix")


def test_tokens_with_markup_render_as_literal_text(attn_view: AttentionView) -> None:
    page = attn_view.page
    assert attn_view.root.locator("img").count() == 0
    assert attn_view.root.locator("b").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    attn_view.control("detail").select_option("lines")
    key = attn_view.root.locator('[data-mv-part="keys"] span').nth(3)
    assert key.text_content() == HOSTILE and key.is_visible()
    assert (
        attn_view.root.locator('[data-mv-part="queries"] span').nth(6).text_content() == "<b>x</b>"
    )
    attn_view.control("detail").select_option("matrix")
    # Ten tokens: the matrix axes carry them too.
    labels = attn_view.root.locator(".mvz-attn-kaxis span").all_text_contents()
    assert labels == WORDS


def test_matrix_hover_names_the_query_and_key_tokens(attn_view: AttentionView) -> None:
    canvas = attn_view.part("matrix")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    cell = box["width"] / len(WORDS)
    canvas.hover(position={"x": 6.5 * cell, "y": 2.5 * cell})
    tooltip = attn_view.root.locator(".mvz-heatmap .mvz-tooltip").first
    tooltip.wait_for(state="visible", timeout=5_000)
    text = tooltip.inner_text()
    assert text.startswith('query 2 "cat" → key 6 "<b>x</b>": '), text
    attn_view.page.mouse.move(0, 0)


def test_sample_slider_shows_another_sample_without_its_padding(attn_notebook: Notebook) -> None:
    view = AttentionView(attn_notebook, attn_notebook.widget_root("Attention", 2), "pair")
    view.root.scroll_into_view_if_needed()
    attn_notebook.wait_ready(view.root, timeout=60)
    slider = view.control("sample")
    assert slider.is_visible() and slider.get_attribute("max") == "1"
    assert view.python("{w}.length") == "6"
    before = view.seq()
    view.set_range("sample", 1)
    attn_notebook.wait_seq_after(view.root, before, timeout=30)
    assert view.python("({w}.sample, {w}.length)") == "(1, 3)"
    assert view.thumbnails() == 4
    assert view.root.locator(".mvz-attn-kaxis span").count() == 3


def test_text_box_reruns_the_model(attn_notebook: Notebook) -> None:
    view = AttentionView(attn_notebook, attn_notebook.widget_root("Attention", 1), "typed")
    view.root.scroll_into_view_if_needed()
    attn_notebook.wait_ready(view.root, timeout=60)
    box = view.control("text")
    assert box.is_visible()
    assert box.input_value() == view.python("{w}.text")
    before = view.seq()
    box.fill("the dog sat on a mat")
    box.press("Enter")
    attn_notebook.wait_seq_after(view.root, before, timeout=30)
    assert view.python("{w}.text") == "the dog sat on a mat"
    assert view.python("{w}.tokens") == str(
        ["[CLS]", "the", "dog", "sat", "on", "a", "mat", "[SEP]"]
    )
    assert view.thumbnails() == 4


def test_512_tokens_12_layers_12_heads(attn_notebook: Notebook) -> None:
    started = time.perf_counter()
    attn_notebook.run_cell(BIG, timeout=300)
    view = AttentionView(attn_notebook, attn_notebook.widget_root("Attention", 3), "big")
    view.root.scroll_into_view_if_needed()
    attn_notebook.wait_ready(view.root, timeout=300)
    view.page.wait_for_function(
        "(el) => el.getAttribute('data-mv-thumbnails') === '144'",
        arg=view.part("overview").element_handle(), timeout=300_000,
    )  # fmt: skip
    print(
        f"\n512 tokens x 12 layers x 12 heads: every thumbnail drawn "
        f"{time.perf_counter() - started:.1f} s "
        "after the cell started (model run included)"
    )
    assert view.python("({w}.length, {w}.n_layers, {w}.n_heads)") == "(512, 12, 12)"
    assert drawn(view.canvases()["overview"])
    sizes = view.python(
        "[len({w}.thumbnails_data), len({w}.matrix_data), len({w}.lines_data), "
        "len({w}.lines_keys), "
        "{w}.byte_budget]"
    )
    thumbs, matrix, lines, keys, budget = (int(n) for n in sizes.strip("[]").split(","))
    assert thumbs + matrix + lines + keys <= budget, sizes
    shape = view.python("{w}.thumbnails_meta['shape']")
    layers, heads, side, side2 = (int(n) for n in shape.strip("[]").split(","))
    assert (layers, heads) == (12, 12) and 16 <= side == side2 <= 32, shape
    # The head view: one span per token and column, lines in one canvas.
    started = time.perf_counter()
    view.control("detail").select_option("lines")
    lines_canvas = view.part("lines")
    lines_canvas.wait_for(state="visible", timeout=60_000)
    view.page.wait_for_function(
        "(el) => Number(el.getAttribute('data-mv-lines')) > 0", arg=lines_canvas.element_handle(),
        timeout=60_000,
    )  # fmt: skip
    print(f"head view at 512 tokens shown {time.perf_counter() - started:.2f} s after the switch")
    spans = view.root.locator("span").count()
    assert spans <= 1100, f"{spans} spans"
    assert view.root.locator('[data-mv-part="keys"] span').count() == 512
    # A layer change after the switch still answers within the budget.
    before = view.seq()
    view.set_range("layer", 11)
    attn_notebook.wait_seq_after(view.root, before, timeout=60)
    sizes = view.python(
        "[len({w}.matrix_data) + len({w}.lines_data) + len({w}.lines_keys), {w}.byte_budget]"
    )
    used, budget = (int(n) for n in sizes.strip("[]").split(","))
    assert used <= budget, sizes
    view.python("{w}.close()")


def test_no_errors_in_outputs_or_console(attn_notebook: Notebook, lab: LabSession) -> None:
    attn_notebook.assert_no_error_outputs()
    lab.page.wait_for_timeout(200)
    errors = unexplained_errors(lab.log)
    assert not errors, "console/page errors:\n" + "\n".join(errors)
