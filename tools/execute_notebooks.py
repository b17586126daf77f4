"""Re-execute notebooks in place and report each one's wall time.

Usage: ``python tools/execute_notebooks.py notebooks/*.ipynb`` (``make notebooks``
runs it in the full profile). A notebook is written back only when every
cell ran; a failure leaves the stored version untouched.

TensorFlow is quieted before it loads: the kernel starts with
``TF_CPP_MIN_LOG_LEVEL=3``, and what native code writes to the kernel's stderr
(the absl notices printed before logging is initialised, which no variable
silences) goes to ``_build/kernel-stderr/<notebook>.log`` instead of into the
notebook. Whatever Python still writes to stderr (a warning, say) is stripped
from the stored notebook, with a warning naming the cell, so that it gets fixed
at its cause. Consecutive stream outputs are merged, as the book shows them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
KERNEL_LOGS = ROOT / "_build" / "kernel-stderr"
# Set in the kernel's environment, so that they apply before TensorFlow loads.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# Native writes to fd 2 go to the kernel's own stderr, not into the notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


def kernel_environment() -> dict[str, str]:
    """The executor's environment with TensorFlow's logging turned down."""
    return {**os.environ, **QUIET_ENVIRONMENT}


def merge_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same name into one."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def is_stderr(output) -> bool:
    return output.output_type == "stream" and output.name == "stderr"


def strip_stderr(notebook, name: str) -> list[str]:
    """Remove stderr outputs from every cell; return a warning for each cell that had some."""
    warnings = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        stderr = [output for output in cell.outputs if is_stderr(output)]
        if stderr:
            first_code_line = (cell.source.strip().splitlines() or [""])[0]
            first_stderr_line = "".join(output.text for output in stderr).strip().splitlines()[0]
            warnings.append(f"{name}, cell {index} ({first_code_line[:60]!r}) wrote to stderr: "
                            f"{first_stderr_line[:160]!r}; stripped, fix it at its cause")
        cell.outputs = merge_streams([output for output in cell.outputs
                                      if not is_stderr(output)])
    return warnings


def execute_in_place(path: Path) -> float:
    """Run every cell of ``path`` in its own folder; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=None, kernel_name="python3", record_timing=False,
                            extra_arguments=KERNEL_ARGUMENTS,
                            resources={"metadata": {"path": str(path.parent)}})
    KERNEL_LOGS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(KERNEL_LOGS / f"{path.stem}.log", "w", encoding="utf-8") as kernel_log:
        client.execute(env=kernel_environment(), stderr=kernel_log)
    seconds = time.perf_counter() - started
    for warning in strip_stderr(notebook, path.name):
        print(f"  warning: {warning}", flush=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".ipynb",
                                     delete=False, encoding="utf-8") as staging:
        nbformat.write(notebook, staging)
    Path(staging.name).replace(path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    paths = parser.parse_args(argv).notebooks
    times: dict[str, float] = {}
    for path in paths:
        print(f"executing {path} ...", flush=True)
        try:
            times[path.name] = execute_in_place(path)
        except CellExecutionError as error:
            print(f"{path} failed; its stored outputs are unchanged.\n{error}")
            return 1
        print(f"  {times[path.name]:.0f} s", flush=True)
    print("\nwall time per notebook")
    for name, seconds in times.items():
        print(f"  {name:<40} {seconds / 60:6.1f} min")
    print(f"  {'total':<40} {sum(times.values()) / 60:6.1f} min")
    print(f"\nthe kernels' native stderr (TensorFlow's start-up notices): {KERNEL_LOGS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
