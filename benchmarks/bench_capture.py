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

    modules = dict(model.named_modules())

    def bare_hooks() -> None:
        # The least any capture can do: one hook per conv layer keeping a detached reference.
        kept = {}
        handles = [
            modules[name].register_forward_hook(
                lambda module, args, output, name=name: kept.__setitem__(name, output.detach())
            )
            for name in conv_layers
        ]
        with torch.no_grad():
            model(x)
        for handle in handles:
            handle.remove()

    times = interleaved(
        {
            "plain": plain,
            "one_layer": lambda: mv.capture(model, x, "layer1"),
            "all_conv": lambda: mv.capture(model, x, conv_layers),
            "bare_hooks_all_conv": bare_hooks,
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
        "ratio_bare_hooks_all_conv": times["bare_hooks_all_conv"]["median_s"] / base,
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
    print(
        f"bare hooks keeping refs  {times['bare_hooks_all_conv']['median_s'] * 1e3:7.2f} ms  "
        f"ratio {result['ratio_bare_hooks_all_conv']:.3f}  (the floor for keeping those outputs)"
    )
    save("capture", result)
    return result


if __name__ == "__main__":
    main()
