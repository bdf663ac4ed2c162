"""Each attribution method vs captum's same computation, in one run (DESIGN.md: <= 1.0x), and each
method's cost in forward+backward units (its time over one forward+backward of the same model on
the same input, timed in the same interleaved rounds).

Model: the ResNet-18 layout of common.py, eval mode, one 3x112x112 image by default (224x224 takes
about four times as long; pass --size 224 on a machine with time to spare).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import Any

import torch
from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from common import ResNet18, interleaved, save

import modelviz_widgets as mv


def cases(model: torch.nn.Module, x: torch.Tensor, target: int) -> list[dict[str, Any]]:
    """(label, ours, captum, reps): the same computation both ways."""
    stdev = 0.15 * float(x.max() - x.min())
    window, stride = (3, 16, 16), 8

    def ours(method: str, layer: str | None = None, **options: Any) -> Callable[[], Any]:
        return lambda: mv.attribute(model, x, target, method, layer, progress=False, **options)

    return [
        {
            "label": "saliency",
            "ours": ours("saliency"),
            "captum": lambda: Saliency(model).attribute(x, target=target),
            "reps": 20,
        },
        {
            "label": "grad_x_input",
            "ours": ours("grad_x_input"),
            "captum": lambda: InputXGradient(model).attribute(x, target=target),
            "reps": 20,
        },
        {
            "label": "guided_backprop",
            "ours": ours("guided_backprop"),
            "captum": lambda: GuidedBackprop(model).attribute(x, target=target),
            "reps": 20,
        },
        {
            "label": "grad_cam (layer4)",
            "ours": ours("grad_cam", "layer4"),
            "captum": lambda: LayerGradCam(model, model.layer4).attribute(
                x, target=target, relu_attributions=True
            ),
            "reps": 20,
        },
        {
            "label": "smoothgrad (10 samples)",
            "ours": ours("smoothgrad", n_samples=10, noise=0.15),
            "captum": lambda: NoiseTunnel(Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=10, stdevs=stdev, target=target
            ),
            "reps": 10,
        },
        {
            "label": "integrated_gradients (50 steps, one batch)",
            "ours": ours("integrated_gradients", steps=50),
            "captum": lambda: IntegratedGradients(model).attribute(x, target=target, n_steps=50),
            "reps": 7,
        },
        {
            "label": "integrated_gradients (50 steps, batched by 8)",
            "ours": ours("integrated_gradients", steps=50, internal_batch_size=8),
            "captum": lambda: IntegratedGradients(model).attribute(
                x, target=target, n_steps=50, internal_batch_size=8
            ),
            "reps": 7,
        },
        {
            "label": "occlusion (3x16x16, stride 8; captum 1 window per forward)",
            "ours": ours("occlusion", window=window, stride=stride),
            "captum": lambda: Occlusion(model).attribute(
                x, sliding_window_shapes=window, strides=stride, target=target
            ),
            "reps": 5,
        },
        {
            "label": "occlusion (same, 32 windows per forward both)",
            "ours": ours("occlusion", window=window, stride=stride, perturbations_per_eval=32),
            "captum": lambda: Occlusion(model).attribute(
                x,
                sliding_window_shapes=window,
                strides=stride,
                target=target,
                perturbations_per_eval=32,
            ),
            "reps": 5,
        },
    ]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=112, help="image side (default 112)")
    parser.add_argument("--reps", type=float, default=1.0, help="scale every case's repetitions")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # captum's notes about hooks on ReLUs and input grads

    torch.manual_seed(0)
    model = ResNet18().eval()
    x = torch.randn(1, 3, args.size, args.size)
    target = 7

    def forward_backward() -> None:
        leaf = x.detach().requires_grad_(True)
        torch.autograd.grad(model(leaf)[:, target].sum(), leaf)

    rows = []
    for case in cases(model, x, target):
        reps = max(1, round(case["reps"] * args.reps))
        times = interleaved(
            {"forward_backward": forward_backward, "ours": case["ours"], "captum": case["captum"]},
            reps=reps,
            warmup=1,
        )
        unit = times["forward_backward"]["median_s"]
        ours, theirs = times["ours"]["median_s"], times["captum"]["median_s"]
        rows.append(
            {
                "method": case["label"],
                "reps": reps,
                "times": times,
                "ratio_to_captum": ours / theirs,
                "units_ours": ours / unit,
                "units_captum": theirs / unit,
            }
        )
        print(
            f"{case['label']:<60} ours {ours * 1e3:8.1f} ms  captum {theirs * 1e3:8.1f} ms  "
            f"ratio {ours / theirs:5.2f}  units: ours {ours / unit:5.1f}, "
            f"captum {theirs / unit:5.1f}",
            flush=True,
        )
    result = {
        "model": f"ResNet-18 layout, 1x3x{args.size}x{args.size}, eval, CPU",
        "unit": "one forward + backward to the input of the same model and input, same rounds",
        "rows": rows,
        "worst_ratio": max(row["ratio_to_captum"] for row in rows),
    }
    print(f"worst ratio to captum: {result['worst_ratio']:.2f} (budget <= 1.0)")
    save("attribution", result)
    return result


if __name__ == "__main__":
    main()
