"""Time to 99% validation accuracy: the starting recipe against the fast recipe.

Trains the modern LeNet twice on the same machine, each run in a fresh Python
process so that its peak memory is its own: (a) the starting script's recipe
(float64 NumPy arrays, one-hot labels, SGD 0.01, batch 128) and (b) the fast
recipe of :mod:`lenet_utils.fast`. Each stops when its validation accuracy,
checked after every epoch, reaches the target, or at its epoch cap. Prints a
table and the speed-up (a)/(b). ``--store`` writes the results into the package
(``lenet_utils/results/time_to_99.json``), where appendix 10 reads them.

Examples
--------
    python benchmarks/time_to_99.py                 # the full run (about 18 min on 2 cores)
    python benchmarks/time_to_99.py --quick         # a capped check (under a minute)
    python benchmarks/time_to_99.py --store         # the full run, kept for appendix 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Keep TensorFlow's C++ start-up notices out of the printed table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RECIPES = ("starting", "fast")
QUICK_EPOCHS = 1
ROOT = Path(__file__).resolve().parents[1]
STORED_RESULTS = ROOT / "lenet_utils" / "results" / "time_to_99.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few images per class and 1 epoch per recipe: checks that the "
                             "benchmark runs, not how fast")
    parser.add_argument("--target", type=float, default=0.99,
                        help="validation accuracy to reach (default 0.99)")
    parser.add_argument("--starting-epochs", type=int, default=60,
                        help="cap on the starting recipe's epochs (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", help="path to mnist.npz (default: LENET_MNIST_PATH, "
                                        "then Keras's download)")
    parser.add_argument("--output", type=Path,
                        help="also write the results as JSON to this file")
    parser.add_argument("--store", action="store_true",
                        help="write the results where the package ships them "
                             f"({STORED_RESULTS.relative_to(ROOT)}), for appendix 10")
    parser.add_argument("--worker", choices=RECIPES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.target <= 1:
        parser.error(f"--target {args.target} must be in (0, 1]")
    if args.starting_epochs < 1:
        parser.error(f"--starting-epochs {args.starting_epochs} must be positive")
    if args.store and (args.quick or args.output):
        parser.error("--store keeps a full run; it cannot be combined with --quick or --output")
    if args.store:
        args.output = STORED_RESULTS
    return args


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Train one recipe in this process and return its summary row."""
    from lenet_utils.benchmark import time_to_accuracy
    from lenet_utils.data import load_splits
    from lenet_utils.fast import FAST_RECIPE, STARTING_RECIPE
    from lenet_utils.profile import get_profile

    limits = get_profile("quick").data_limits if args.quick else {}
    raw = load_splits(args.mnist, seed=args.seed, scaled=False, **limits)
    name, config = {"starting": ("(a) starting recipe",
                                 STARTING_RECIPE.but(epochs=args.starting_epochs)),
                    "fast": ("(b) fast recipe", FAST_RECIPE)}[args.worker]
    config = config.but(seed=args.seed, epochs=QUICK_EPOCHS if args.quick else config.epochs)
    run = time_to_accuracy(config, raw, target=args.target, evaluate_test=True)
    row = {"recipe": name, **run.summary()}
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    row["history"] = run.history.reset_index().round(4).to_dict(orient="records")
    return row


def run_in_subprocess(recipe: str, argv: list[str]) -> dict[str, Any]:
    """Run one recipe in a fresh interpreter; its last stdout line is its row."""
    command = [sys.executable, __file__, *argv, "--worker", recipe]
    print(f"training the {recipe} recipe ...", flush=True)
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.stderr.write(finished.stderr[-3000:])
        raise SystemExit(f"error: the {recipe} recipe failed (exit {finished.returncode}); "
                         "no results were written.")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from lenet_utils.device import cpu_flags, cpu_has_native_bfloat16, device_name

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in
                 Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "device": device_name(),
            "native_bfloat16": cpu_has_native_bfloat16(),
            "bfloat16_flags": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def write_atomically(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as file:
        json.dump(results, file, indent=1)
        file.write("\n")
    os.replace(file.name, path)


def report(results: dict[str, Any]) -> str:
    """The table and the speed-up, as printed."""
    import pandas as pd

    from lenet_utils.benchmark import benchmark_table, speedup

    rows, target = results["rows"], results["target"]
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        lines = [benchmark_table(rows, target).to_string()]
    ratio, relation = speedup(*rows)
    if ratio is None:
        lines.append(f"speed-up (a)/(b): none, the fast recipe did not reach {target:.1%}")
    else:
        bound = "" if relation == "=" else (
            f" (a lower bound: the starting recipe stopped at its cap of {rows[0]['epochs']} "
            f"epochs without reaching {target:.1%})")
        lines.append(f"speed-up (a)/(b) to {target:.1%}: {relation} {ratio:.1f}x{bound}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        from lenet_utils import LenetError

        try:
            print(json.dumps(run_worker(args)))
        except LenetError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    forwarded = ["--target", str(args.target), "--starting-epochs", str(args.starting_epochs),
                 "--seed", str(args.seed), *(["--quick"] if args.quick else []),
                 *(["--mnist", args.mnist] if args.mnist else [])]
    rows = [run_in_subprocess(recipe, forwarded) for recipe in RECIPES]
    results = {"target": args.target, "quick": args.quick, "seed": args.seed,
               "command": "python benchmarks/time_to_99.py " + " ".join(argv),
               "machine": machine(), "rows": rows}
    print(report(results))
    if args.output:
        write_atomically(args.output, results)
        print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
