"""Re-execute notebooks in place and report each one's wall time.

Usage: ``python tools/execute_notebooks.py notebooks/*.ipynb`` (``make notebooks``
runs it in the full profile). A notebook is written back only when every
cell ran; a failure leaves the stored version untouched.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute_in_place(path: Path) -> float:
    """Run every cell of ``path`` in its own folder; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
