"""The pages of the book, in the order of ``_toc.yml``, sections included."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files(*, with_root: bool = False) -> list[str]:
    """Every file the table of contents lists, the root page first if asked."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [entry for part in toc["parts"] for entry in _walk(part["chapters"])]
    return [toc["root"]] * with_root + [entry["file"] for entry in entries]


def _walk(entries: list[dict]) -> list[dict]:
    """The entries of a toc list, each followed by the sections nested under it."""
    found = []
    for entry in entries:
        found.append(entry)
        found.extend(_walk(entry.get("sections", [])))
    return found
