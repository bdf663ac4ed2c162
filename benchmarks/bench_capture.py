"""Forward with capture hooks vs a plain forward, in one run (DESIGN.md: <= 1.05x one layer,
<= 1.10x all conv layers)."""

from __future__ import annotations

import argparse

import torch
from common import ResNet18, interleaved, save
from torch import nn

import modelviz_widgets as mv


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = ResNet18().eval()
    x = torch.randn(1, 3, 224, 224)
    conv_layers = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]

    def plain() -> None:
        with torch.no_grad():
            model(x)

    times = interleaved(
        {
            "plain": plain,
            "one_layer": lambda: mv.capture(model, x, "layer1"),
            "all_conv": lambda: mv.capture(model, x, conv_layers),
        },
        reps=args.reps,
    )
    base = times["plain"]["median_s"]
    result = {
        "model": "ResNet-18 layout, 1x3x224x224, eval, CPU",
        "n_conv_layers": len(conv_layers),
        "times": times,
        "ratio_one_layer": times["one_layer"]["median_s"] / base,
        "ratio_all_conv": times["all_conv"]["median_s"] / base,
    }
    print(f"plain forward           {base * 1e3:8.2f} ms (median of {args.reps})")
    print(
        f"capture one layer       {times['one_layer']['median_s'] * 1e3:8.2f} ms  "
        f"ratio {result['ratio_one_layer']:.3f}  (budget <= 1.05)"
    )
    print(
        f"capture {len(conv_layers)} conv layers  {times['all_conv']['median_s'] * 1e3:8.2f} ms  "
        f"ratio {result['ratio_all_conv']:.3f}  (budget <= 1.10)"
    )
    save("capture", result)
    return result


if __name__ == "__main__":
    main()
