"""Run every benchmark, each in its own process, and print the DESIGN.md budgets they check.

python benchmarks/run_all.py            # all of them
python benchmarks/run_all.py wire       # only some: capture, wire, memory, browser, attribution,
                                        # attention, training, explorer, pause
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "capture": "bench_capture.py",
    "wire": "bench_wire.py",
    "memory": "bench_memory.py",
    "browser": "bench_browser.py",
    "attribution": "bench_attribution.py",
    "attention": "bench_attention.py",
    "training": "bench_training.py",
    "explorer": "bench_explorer.py",
    "pause": "bench_pause.py",
}


def main() -> int:
    chosen = sys.argv[1:] or list(SCRIPTS)
    unknown = [name for name in chosen if name not in SCRIPTS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(SCRIPTS)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        result = subprocess.run([sys.executable, str(HERE / SCRIPTS[name])], cwd=HERE)
        if result.returncode:
            failed.append(name)
    print(f"\nresults written to {HERE / 'results'}")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
