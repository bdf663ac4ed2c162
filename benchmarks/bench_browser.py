"""Slider-to-redraw latency in a real JupyterLab (Chromium via Playwright).

Runs notebooks/01_feature_maps.ipynb in a JupyterLab started on a free loopback port, then, in the
same page, times key press -> DOM updated for:

- a plain ``IntSlider`` whose observer echoes its value into a ``Label`` (the baseline),
- the FeatureMaps channel slider (until ``data-mv-seq`` changes with ``data-mv-state="ready"``),
- the FeatureMaps layer drop-down (the model re-runs with a hook on the new layer).

The first two are interleaved sample by sample, so both see the same machine. Prints p50 / p95 and
the difference and ratio against the echo; writes benchmarks/results/browser.json. By default it
runs twice: with TCP_NODELAY on the kernel websockets (as the browser tests do) and with stock
jupyter_server, whose Nagle + delayed-ACK stalls add 0 or ~40 ms to each update at random.

    python benchmarks/bench_browser.py [--n 40] [--layer-n 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BUDGET_P50_OVER_ECHO_MS = 30.0
BUDGET_P95_MS = 100.0


def load_browser_helpers() -> ModuleType:
    """Import tests/browser as a package under a private name (``tests`` is not a package)."""
    folder = REPO_ROOT / "tests" / "browser"
    spec = importlib.util.spec_from_file_location(
        "mv_browser_harness", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    importlib.import_module(f"{spec.name}.jupyter")
    importlib.import_module(f"{spec.name}.drivers")
    return package


def measure(args: argparse.Namespace, helpers: ModuleType, tcp_nodelay: bool) -> dict[str, Any]:
    """One JupyterLab + Chromium session: the interleaved slider paths, then the layer changes."""
    jupyter, drivers = helpers.jupyter, helpers.drivers
    started = time.monotonic()
    with jupyter.lab_session([args.notebook], tcp_nodelay=tcp_nodelay) as lab:
        notebook = jupyter.Notebook.open(lab.page, lab.server, args.notebook.name)
        notebook.run_all(timeout=300)
        notebook.assert_no_error_outputs()
        view = drivers.FeatureMapsView(notebook, nth=0, python_name="fm")
        view.wait_ready(timeout=60)

        sliders = drivers.measure_interleaved(
            drivers.echo_and_feature_maps(notebook, view),
            n=args.n, warmup=args.warmup, pause=args.pause,
        )  # fmt: skip
        summary = sliders.summary()
        timeouts = dict(sliders.timeouts)
        failures = dict(sliders.failures)

        options = view.layer_options()
        layer_summary: dict[str, float] = {"n": 0}
        if len(options) >= 2 and args.layer_n > 0:
            pair = (options[0], options[1])
            layers = drivers.measure_interleaved(
                {"feature_maps_layer": lambda: view.step_layer(pair)},
                n=args.layer_n, warmup=1, pause=args.pause,
            )  # fmt: skip
            layer_summary = layers.summary()["feature_maps_layer"]
            timeouts.update(layers.timeouts)
            failures.update(layers.failures)
        errors = jupyter.unexplained_errors(lab.log)
        browser_version = lab.browser.version

    echo = summary["intslider_echo"]
    channel = summary["feature_maps_channel"]
    both = bool(echo["n"]) and bool(channel["n"])
    difference = round(channel["p50"] - echo["p50"], 2) if both else None
    ratio = round(channel["p50"] / echo["p50"], 2) if both and echo["p50"] else None
    return {
        "websocket": "TCP_NODELAY" if tcp_nodelay else "stock (Nagle on)",
        "intslider_echo": echo,
        "feature_maps_channel": channel,
        "feature_maps_layer": layer_summary,
        "channel_p50_minus_echo_p50_ms": difference,
        "channel_p50_over_echo_p50": ratio,
        "budget_met": both
        and difference is not None
        and difference <= BUDGET_P50_OVER_ECHO_MS
        and channel["p95"] <= BUDGET_P95_MS,
        "timeouts": timeouts,
        "failures": failures,
        "console_errors": errors,
        "samples": sliders.samples,
        "seconds": round(time.monotonic() - started, 1),
        "browser": browser_version,
    }


def print_run(run: dict[str, Any]) -> None:
    def row(name: str, stats: dict[str, float]) -> str:
        if not stats.get("n"):
            return f"  {name:<22} no samples"
        return f"  {name:<22} p50 {stats['p50']:6.1f}  p95 {stats['p95']:6.1f}  n {stats['n']}"

    print(f"websocket {run['websocket']}, {run['browser']}, key press -> DOM updated, ms")
    print(row("IntSlider echo", run["intslider_echo"]))
    print(row("FeatureMaps channel", run["feature_maps_channel"]))
    print(row("FeatureMaps layer", run["feature_maps_layer"]))
    difference = run["channel_p50_minus_echo_p50_ms"]
    if difference is not None:
        print(
            f"  channel p50 - echo p50 = {difference:+.1f} ms "
            f"(budget <= +{BUDGET_P50_OVER_ECHO_MS:.0f}),"
            f" ratio {run['channel_p50_over_echo_p50']}x; channel p95 "
            f"{run['feature_maps_channel']['p95']:.1f} ms (budget <= {BUDGET_P95_MS:.0f}); "
            f"budget met: {run['budget_met']}"
        )
    if any(run["timeouts"].values()):
        print(f"  timeouts: {run['timeouts']}")
        for name, detail in run["failures"].items():
            print(f"    {name}: {detail.get('diagnosis', detail)}")
    if run["console_errors"]:
        print(f"  console errors: {len(run['console_errors'])} (see the JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="samples per slider path (default 40)")
    parser.add_argument("--layer-n", type=int, default=10, help="layer changes timed (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between samples")
    parser.add_argument(
        "--websocket",
        choices=["nodelay", "stock", "both"],
        default="both",
        help="kernel websocket with TCP_NODELAY (as the browser tests run), stock jupyter_server "
        "(Nagle on: +0 or +40 ms per update), or both one after the other (default)",
    )
    parser.add_argument(
        "--notebook", type=Path, default=REPO_ROOT / "notebooks" / "01_feature_maps.ipynb"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "browser.json"
    )
    args = parser.parse_args(argv)
    args.notebook = args.notebook.resolve()
    args.out = args.out.resolve()

    helpers = load_browser_helpers()
    helpers.jupyter.require_built_js()
    if not args.notebook.is_file():
        raise SystemExit(f"notebook not found: {args.notebook}")

    modes = {"nodelay": [True], "stock": [False], "both": [True, False]}[args.websocket]
    runs = []
    for tcp_nodelay in modes:
        run = measure(args, helpers, tcp_nodelay)
        print_run(run)
        runs.append(run)

    result = {
        "benchmark": "browser slider -> redraw (key press to DOM updated), ms",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notebook": str(args.notebook),
        "n": args.n,
        "layer_n": args.layer_n,
        "budget": {
            "channel_p50_minus_echo_p50_max_ms": BUDGET_P50_OVER_ECHO_MS,
            "channel_p95_max_ms": BUDGET_P95_MS,
        },
        "runs": runs,
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    # Exit non-zero when a path could not be measured at all (the reason is printed above).
    empty = [run["websocket"] for run in runs if not run["feature_maps_channel"].get("n")]
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
