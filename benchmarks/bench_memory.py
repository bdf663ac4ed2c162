"""Python memory over 1,000 streamed FeatureMaps updates, and hooks left after close()
(DESIGN.md: growth <= 5 MB between update 100 and 1,000; 0 hooks left)."""

from __future__ import annotations

import argparse
import gc
import tracemalloc

import torch
from common import save
from torch import nn

import modelviz_widgets as mv


def hook_count(model: nn.Module) -> int:
    return sum(
        len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
        for module in model.modules()
    )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=1000)
    args = parser.parse_args()

    model = mv.demo.digits_cnn()
    images, _ = mv.demo.load_digits()
    fm = mv.FeatureMaps(model, images[:16])
    sent = {"messages": 0, "bytes": 0}

    def discard(msg: dict, buffers: list | None = None) -> None:
        # Stands in for the comm: count, keep nothing.
        sent["messages"] += 1
        sent["bytes"] += sum(memoryview(buffer).nbytes for buffer in buffers or [])

    fm._send = discard
    names = [option["name"] for option in fm.layer_options]
    tracemalloc.start()
    marks: dict[int, int] = {}
    for update in range(1, args.updates + 1):
        if update % 50 == 0:
            fm.layer = names[(update // 50) % len(names)]  # a re-run of the model now and then
        else:
            fm.channel = update % fm.n_channels
        if update in (100, args.updates):
            gc.collect()
            marks[update] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    hooks_before_close = hook_count(model)
    fm.close()
    growth = marks[args.updates] - marks[100]
    result = {
        "updates": args.updates,
        "messages_sent": sent["messages"],
        "bytes_sent": sent["bytes"],
        "growth_bytes_100_to_end": growth,
        "hooks_while_open": hooks_before_close,
        "hooks_after_close": hook_count(model),
    }
    print(f"{args.updates} updates, {sent['messages']} messages, {sent['bytes'] / 1e3:.0f} kB sent")
    print(f"memory growth, update 100 -> {args.updates}: {growth / 1e6:.3f} MB  (budget <= 5 MB)")
    print(
        f"hooks while open {result['hooks_while_open']}, after close {result['hooks_after_close']}"
    )
    save("memory", result)
    return result


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
