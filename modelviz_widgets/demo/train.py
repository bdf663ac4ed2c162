"""Train the demo digits CNN and write its shipped weights.

Run as ``python -m modelviz_widgets.demo.train [--epochs N] [--seed S] [--output PATH]``.

Uses the defaults of :func:`~modelviz_widgets.demo.train_digits_cnn`, so the file it writes is what
``digits_cnn()`` loads. Refuses to write weights below 95 % held-out accuracy.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from .models import DIGITS_WEIGHTS
from .training import DEFAULT_EPOCHS, train_digits_cnn

MIN_ACCURACY = 0.95


def main(argv: Sequence[str] | None = None) -> int:
    """Train, report the held-out accuracy, and save the state_dict; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m modelviz_widgets.demo.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DIGITS_WEIGHTS, help="where to write")
    parser.add_argument("--quiet", action="store_true", help="print only the final line")
    args = parser.parse_args(argv)

    model, accuracy = train_digits_cnn(epochs=args.epochs, seed=args.seed, verbose=not args.quiet)
    if accuracy <= MIN_ACCURACY:
        print(f"accuracy {accuracy:.2%} is not above {MIN_ACCURACY:.0%}; nothing written")
        return 1
    torch.save(model.state_dict(), args.output)
    size_kb = args.output.stat().st_size / 1024
    print(f"wrote {args.output} ({size_kb:.0f} kB), held-out accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
