"""Offline demo data: scikit-learn's 8x8 digits and its two sample photos.

Both ship inside the scikit-learn package, so nothing here touches the network.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

#: Fraction of each digit class held out for testing.
TEST_FRACTION = 0.2
#: Seed of the train/test split. Fixed, and independent of any training seed, so every model
#: trained by :func:`~modelviz_widgets.demo.train_digits_cnn` is scored on the same held-out digits.
SPLIT_SEED = 0
#: Order of the photos returned by :func:`load_photos`.
PHOTO_NAMES = ("china", "flower")

DigitsSplit = Literal["train", "test", "all"]


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    # Pixel values are integer counts 0..16 in the original data set.
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=1)
def _split_indices() -> tuple[np.ndarray, np.ndarray]:
    _, labels = _digits_arrays()
    # Legacy RandomState: NumPy keeps its stream fixed across versions, so the split never moves.
    rng = np.random.RandomState(SPLIT_SEED)
    train_parts, test_parts = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        n_test = round(len(members) * TEST_FRACTION)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = np.sort(np.concatenate(train_parts))
    test = np.sort(np.concatenate(test_parts))
    return train, test


def load_digits(split: DigitsSplit = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Load scikit-learn's 8x8 handwritten digits as tensors ready for :class:`DigitsCNN`.

    Parameters
    ----------
    split : {"test", "train", "all"}
        ``"test"``: the held-out 20 % of each class that :func:`train_digits_cnn` scores on (359
        images); ``"train"``: the other 1,438 images it trains on; ``"all"``: all 1,797 images in
        scikit-learn's order. The split is stratified, seeded with :data:`SPLIT_SEED`, and the same
        on every call and machine.

    Returns
    -------
    images : torch.Tensor
        float32, shape ``[N, 1, 8, 8]``, values in ``[0, 1]`` (the original 0..16 divided by 16).
    labels : torch.Tensor
        int64, shape ``[N]``, the digit 0..9 of each image.

    Examples
    --------
    >>> images, labels = load_digits("test")
    >>> images.shape, labels.shape
    (torch.Size([359, 1, 8, 8]), torch.Size([359]))
    """
    images, labels = _digits_arrays()
    if split == "all":
        index = np.arange(len(labels))
    elif split in ("train", "test"):
        train, test = _split_indices()
        index = train if split == "train" else test
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    # Fancy indexing copies, so callers may modify the tensors freely.
    return torch.from_numpy(images[index]), torch.from_numpy(labels[index])


def load_photos(size: int | tuple[int, int] | None = 128) -> torch.Tensor:
    """Load scikit-learn's two sample photos (a Chinese temple and a flower) as an RGB batch.

    Parameters
    ----------
    size : int or (int, int) or None
        An int resizes so the shorter side has that many pixels, keeping the aspect ratio (the
        default 128 gives ``[2, 3, 128, 192]``); a pair is the exact ``(height, width)``; ``None``
        keeps the original 427 x 640 pixels. Resizing is bilinear with antialiasing.

    Returns
    -------
    torch.Tensor
        float32, shape ``[2, 3, H, W]``, values in ``[0, 1]``, photos in the order of
        :data:`PHOTO_NAMES` (``"china"``, ``"flower"``).
    """
    photos = _photo_tensor()
    if size is None:
        return photos.clone()
    height, width = photos.shape[-2:]
    if isinstance(size, int):
        if size < 1:
            raise ValueError(
                f"size must be a positive int, a (height, width) pair or None, got {size}"
            )
        scale = size / min(height, width)
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
    else:
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be a positive (height, width) pair, got {size!r}")
        target = (int(size[0]), int(size[1]))
    if target == (height, width):
        return photos.clone()
    resized = F.interpolate(
        photos, size=target, mode="bilinear", align_corners=False, antialias=True
    )
    return resized.clamp_(0.0, 1.0)


@lru_cache(maxsize=1)
def _photo_tensor() -> torch.Tensor:
    try:
        import PIL  # noqa: F401  (scikit-learn decodes the JPEG files with Pillow)
    except ImportError as error:
        raise ImportError(
            "load_photos needs Pillow to decode scikit-learn's sample JPEGs: pip install pillow"
        ) from error
    from sklearn.datasets import load_sample_images

    photos = np.stack(load_sample_images().images)  # [N, H, W, 3] uint8
    return torch.from_numpy(photos).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
