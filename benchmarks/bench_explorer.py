"""Explorer at scale (issue 7): a ResNet-50-sized model opens in <= 2 s and every interaction's
payload stays within the byte budget.

Model: the ResNet-50 layout of common.py (25.6M parameters, random weights, seed 0), eval mode;
inputs of 1 and 4 images 3x224x224 (seed 1). In one run:

- the time to construct ``mv.Explorer(model, x)`` (the tree, one forward and backward for the
  health badges, the predictions, the input strip, the opening layer's view and distributions),
  interleaved with the model's plain forward (the ratio's baseline); the first construction in
  the process is given apart (imports, allocator warm-up);
- the bytes each interaction sends, as a kernel would: the update messages of every widget
  involved (the Explorer's own view and the views beside it) and the opening state of any view
  created by the interaction, against ``byte_budget`` (2,000,000 by default) per message.

    python benchmarks/bench_explorer.py [--reps 5] [--batch 1 4]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import ipywidgets
import torch
from common import ResNet50, interleaved, save
from ipywidgets.widgets.widget import _remove_buffers

import modelviz_widgets as mv
from modelviz_widgets.wire import DEFAULT_BYTE_BUDGET


def message_size(state: dict[str, Any], buffers: list[Any]) -> int:
    return len(json.dumps(state, default=str).encode()) + sum(
        memoryview(buffer).nbytes for buffer in buffers
    )


class Wire:
    """Every update message any widget sends, and the opening state of every widget created."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self._original = ipywidgets.Widget._send
        self._known = set(ipywidgets.Widget.widgets)
        wire = self

        def record(widget: Any, msg: dict[str, Any], buffers: list[Any] | None = None) -> None:
            if msg.get("method") == "update":
                wire.sizes.append(message_size(msg.get("state", {}), list(buffers or [])))

        ipywidgets.Widget._send = record  # type: ignore[method-assign]

    def opened(self) -> list[int]:
        """Sizes of the opening messages of the widgets created since the last call."""
        sizes = []
        for key, widget in list(ipywidgets.Widget.widgets.items()):
            if key not in self._known:
                state, _paths, buffers = _remove_buffers(widget.get_state())
                sizes.append(message_size(state, buffers))
        self._known = set(ipywidgets.Widget.widgets)
        return sizes

    def take(self) -> list[int]:
        sizes, self.sizes = self.sizes + self.opened(), []
        return sizes

    def close(self) -> None:
        ipywidgets.Widget._send = self._original  # type: ignore[method-assign]


def browser_sets(widget: Any, **state: Any) -> None:
    """A control change as the browser sends it."""
    content = {"data": {"method": "update", "state": state, "buffer_paths": []}}
    widget._handle_msg({"content": content, "buffers": []})


def interactions(explorer: Any) -> list[tuple[str, dict[str, Any]]]:
    classes = [p["class"] for p in explorer.core.predictions]
    return [
        ("select a late 3x3 conv (layer4.2.conv2, 512 x 7 x 7)", {"layer": "layer4.2.conv2"}),
        ("select an early conv (layer1.0.conv2, 64 x 56 x 56)", {"layer": "layer1.0.conv2"}),
        ("select a 1x1 conv (layer3.5.conv3, 1024 x 14 x 14)", {"layer": "layer3.5.conv3"}),
        ("select a BatchNorm (layer2.1.bn2)", {"layer": "layer2.1.bn2"}),
        ("select the classifier (fc, 1000 outputs)", {"layer": "fc"}),
        ("select a container (layer3)", {"layer": "layer3"}),
        ("pick a class", {"target": int(classes[1])}),
        ("open the saliency tab", {"tab": "saliency"}),
        ("back to the layer view", {"tab": "layer"}),
    ]


def payloads(model: torch.nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    wire = Wire()
    try:
        started = time.perf_counter()
        explorer = mv.Explorer(model, x)
        rows = [{"update": "open", "seconds": time.perf_counter() - started, "sizes": wire.take()}]
        if x.shape[0] > 1:
            steps = [*interactions(explorer), ("pick another input", {"sample": 1})]
        else:
            steps = interactions(explorer)
        for name, state in steps:
            started = time.perf_counter()
            browser_sets(explorer.core, **state)
            if explorer.views.get("saliency") is not None:
                explorer.views["saliency"].wait(120)
            seconds = time.perf_counter() - started
            if explorer.error:
                raise RuntimeError(f"{name}: the Explorer says {explorer.error!r}")
            rows.append({"update": name, "seconds": seconds, "sizes": wire.take()})
        explorer.close()
    finally:
        wire.close()
    budget = DEFAULT_BYTE_BUDGET
    for row in rows:
        row["bytes"] = sum(row["sizes"])
        row["largest_message"] = max(row["sizes"], default=0)
        row["within_budget"] = row["largest_message"] <= budget
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ResNet50().eval()
    n_params = sum(p.numel() for p in model.parameters())
    result: dict[str, Any] = {"model": "ResNet-50 layout", "parameters": n_params, "runs": {}}
    first = True
    for batch in args.batch:
        x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        cold = None
        if first:
            started = time.perf_counter()
            mv.Explorer(model, x).close()
            cold = time.perf_counter() - started
            first = False

        def forward(x: torch.Tensor = x) -> None:
            with torch.no_grad():
                model(x)

        def construct(x: torch.Tensor = x) -> None:
            mv.Explorer(model, x).close()

        times = interleaved({"forward": forward, "explorer": construct}, args.reps, warmup=1)
        rows = payloads(model, x)
        result["runs"][str(batch)] = {"cold_seconds": cold, "times": times, "payloads": rows}
        forward_s = times["forward"]["median_s"]
        open_s = times["explorer"]["median_s"]
        print(f"\n{batch} x 3 x 224 x 224 ({n_params:,} parameters)")
        if cold is not None:
            print(f"  first construction in the process: {cold:.2f} s")
        print(
            f"  plain forward {forward_s * 1e3:.0f} ms; Explorer opens in {open_s:.2f} s "
            f"({open_s / forward_s:.1f} forwards; budget 2 s: {'ok' if open_s <= 2 else 'OVER'})"
        )
        for row in rows:
            print(f"  {row['update']:<55} {row['seconds']:6.2f} s  {row['bytes']:>10,} B  "
                  f"largest message {row['largest_message']:>9,} B "
                  f"{'ok' if row['within_budget'] else 'OVER BUDGET'}")  # fmt: skip
    save("explorer", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
