"""Write each notebook's full-profile wall time, from its run record, into the book.

Usage: ``python tools/wall_times.py`` (``make notebooks`` runs it after executing).
The table goes between the two marker lines of ``book/how-to-run.md``; a test
checks that it matches the stored run records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "how-to-run.md"
BEGIN = "<!-- wall times: begin (tools/wall_times.py writes this table) -->"
END = "<!-- wall times: end -->"


def recorded_seconds(notebook: Path) -> tuple[str, int]:
    """The profile and wall time printed by the notebook's last cell."""
    last = [cell for cell in json.loads(notebook.read_text())["cells"]
            if cell["cell_type"] == "code"][-1]
    text = "".join("".join(output.get("text", "")) for output in last["outputs"])
    profile = re.search(r"^profile: (\w+)$", text, re.M)
    seconds = re.search(r"^wall time: (\d+) s$", text, re.M)
    if not (profile and seconds):
        raise SystemExit(f"{notebook.name}: its last cell holds no run record")
    return profile.group(1), int(seconds.group(1))


def wall_time_table() -> str:
    """A Markdown table of every notebook's recorded wall time and the total."""
    rows = ["| chapter | profile | wall time |", "|---|---|---|"]
    total = 0
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        profile, seconds = recorded_seconds(notebook)
        total += seconds
        rows.append(f"| `{notebook.name}` | {profile} | {seconds / 60:.1f} min |")
    rows.append(f"| **total** | | **{total / 60:.1f} min** |")
    return "\n".join(rows)


def main() -> None:
    page = PAGE.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    PAGE.write_text(page[:start] + "\n" + wall_time_table() + "\n" + page[end:])
    print(wall_time_table())


if __name__ == "__main__":
    main()
