"""The demo models: a small trained CNN for 8x8 digits and an untrained conv net for photos."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

#: Shipped state_dict of :class:`DigitsCNN`, written by ``python -m modelviz_widgets.demo.train``.
DIGITS_WEIGHTS = Path(__file__).with_name("digits_cnn.pt")

#: What each of the 12 fixed filters of ``PhotoCNN.features.conv1`` responds to, by channel.
PHOTO_FILTER_NAMES = (
    "edge: dark to bright, left to right",
    "edge: bright to dark, left to right",
    "edge: dark to bright, top to bottom",
    "edge: bright to dark, top to bottom",
    "edge: diagonal, dark top-left to bright bottom-right",
    "edge: diagonal, dark top-right to bright bottom-left",
    "spot: bright centre, dark surround",
    "spot: dark centre, bright surround",
    "colour: red over green",
    "colour: green over red",
    "colour: blue over yellow",
    "colour: yellow over blue",
)


class DigitsCNN(nn.Module):
    """A small CNN for scikit-learn's 8x8 digits (about 10,000 parameters, 40 kB of weights).

    Input ``[N, 1, 8, 8]`` with values in ``[0, 1]``; output ``[N, 10]`` logits, one per digit.

    Layers, by ``named_modules()`` name, with the output shape for one image:

    ============================  ================  ============
    name                          module            output
    ============================  ================  ============
    ``features.conv1``            Conv2d(1, 8, 3)   [8, 8, 8]
    ``features.relu1``            ReLU              [8, 8, 8]
    ``features.conv2``            Conv2d(8, 16, 3)  [16, 8, 8]
    ``features.relu2``            ReLU              [16, 8, 8]
    ``features.pool``             MaxPool2d(2)      [16, 4, 4]
    ``classifier.flatten``        Flatten           [256]
    ``classifier.fc1``            Linear(256, 32)   [32]
    ``classifier.relu``           ReLU              [32]
    ``classifier.fc2``            Linear(32, 10)    [10]
    ============================  ================  ============

    Both convolutions keep the full 8x8 resolution (padding 1) so their feature maps stay legible.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(1, 8, kernel_size=3, padding=1),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(8, 16, kernel_size=3, padding=1),
                relu2=nn.ReLU(),
                pool=nn.MaxPool2d(2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(16 * 4 * 4, 32),
                relu=nn.ReLU(),
                fc2=nn.Linear(32, 10),
            )
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``[N, 10]`` digit logits for ``[N, 1, 8, 8]`` images."""
        return self.classifier(self.features(images))


class PhotoCNN(nn.Module):
    """A small conv net for RGB photos whose first layer is hand-set, so it is readable untrained.

    Input ``[N, 3, H, W]`` with values in ``[0, 1]``; output ``[N, 10]`` logits of no meaning (the
    net is untrained: it exists to show feature maps, not to classify).

    ``features.conv1`` holds 12 fixed 3x3 filters listed in :data:`PHOTO_FILTER_NAMES`: oriented
    edge detectors (Sobel) and centre-surround spots (Laplacian) on luminance, and red/green and
    blue/yellow colour-opponent blobs, mostly as +/- pairs because the ReLU after it keeps only the
    positive side. Their maps show edges, spots and colours of the photo; replicate padding keeps
    the photo's border from reading as an edge. The later layers
    (``features.conv2``, ``features.conv3``, ``classifier.fc``) are Kaiming-initialised from a seed;
    their maps are random mixtures of those detectors, as in an untrained net.

    Layers: ``features.conv1`` (3 -> 12), ``features.relu1``, ``features.pool1`` (/2),
    ``features.conv2`` (12 -> 16), ``features.relu2``, ``features.pool2`` (/2), ``features.conv3``
    (16 -> 32), ``features.relu3``, ``classifier.pool`` (global average), ``classifier.flatten``,
    ``classifier.fc`` (32 -> 10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 12, kernel_size=3, padding=1, padding_mode="replicate"),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(12, 16, kernel_size=3, padding=1),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(16, 32, kernel_size=3, padding=1),
                relu3=nn.ReLU(),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(32, 10),
            )
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``[N, 10]`` logits for ``[N, 3, H, W]`` photos."""
        return self.classifier(self.features(images))


def digits_cnn(pretrained: bool = True) -> DigitsCNN:
    """Return the demo digits CNN in eval mode.

    Parameters
    ----------
    pretrained : bool
        True loads the shipped weights (over 95 % accuracy on ``load_digits("test")``); False
        leaves PyTorch's default random initialisation, drawn from the global RNG.

    Returns
    -------
    DigitsCNN
        On the CPU, in eval mode.
    """
    model = DigitsCNN()
    if pretrained:
        state = torch.load(DIGITS_WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval()


def photo_cnn(seed: int = 0) -> PhotoCNN:
    """Return the untrained demo conv net for photos, the same for the same ``seed``, in eval mode.

    The first layer's 12 filters are fixed edge, spot and colour detectors (see
    :class:`PhotoCNN` and :data:`PHOTO_FILTER_NAMES`), so its feature maps are meaningful without
    training; the later layers are random, from a private generator seeded with ``seed`` (the
    global RNG is neither used nor changed).

    Parameters
    ----------
    seed : int
        Seed of the random layers.

    Returns
    -------
    PhotoCNN
        On the CPU, in eval mode.
    """
    # Construction runs PyTorch's default init, which draws from the global RNG; fork it so the
    # caller's random stream is left as it was. Every weight is overwritten below anyway.
    with torch.random.fork_rng(devices=[]):
        model = PhotoCNN()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        first = model.features.conv1
        assert isinstance(first, nn.Conv2d) and first.bias is not None
        first.weight.copy_(_photo_filters())
        first.bias.zero_()
    return model.eval()


def _photo_filters() -> torch.Tensor:
    """The 12 fixed ``[3, 3, 3]`` filters of ``PhotoCNN.features.conv1``, as PHOTO_FILTER_NAMES."""
    # Sobel kernels scaled so a full step from 0 to 1 responds with 1.
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    sobel_diagonal = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]]) / 4
    laplacian = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]) / 8
    blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    luminance = torch.tensor([0.299, 0.587, 0.114])
    red_green = torch.tensor([1.0, -1.0, 0.0])
    blue_yellow = torch.tensor([-0.5, -0.5, 1.0])

    def spread(colour: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return colour[:, None, None] * kernel[None, :, :]

    filters = [
        spread(luminance, sobel_x),
        spread(luminance, -sobel_x),
        spread(luminance, sobel_x.T),
        spread(luminance, -sobel_x.T),
        spread(luminance, sobel_diagonal),
        spread(luminance, sobel_diagonal.flip(1)),
        spread(luminance, laplacian),
        spread(luminance, -laplacian),
        spread(red_green, blur),
        spread(-red_green, blur),
        spread(blue_yellow, blur),
        spread(-blue_yellow, blur),
    ]
    return torch.stack(filters)
