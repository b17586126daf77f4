"""Tables that a stored notebook displayed, read back by a later chapter.

A chapter that extends another one's runs without training them again (chapter
9h adds seeds to chapter 9b's) takes that chapter's results from its stored
outputs: the numbers the book shows, not a copy typed into the code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from lenet_utils.errors import LenetError


def printed_table(notebook: str | os.PathLike, tag: str) -> pd.DataFrame:
    """The table that the cell tagged ``tag`` in a stored notebook displayed.

    The table is read from the cell's ``text/plain`` output, as pandas prints a
    frame of numbers whose row index is named: a first line with the columns'
    name, if they have one, and their labels, a second with the rows' name,
    then one line per row, its label and its values. A pivot table has both
    names; a table of results per seed often only the rows'.

    Parameters
    ----------
    notebook : str or path-like
        The stored notebook (``.ipynb``).
    tag : str
        The tag of exactly one code cell in it.

    Returns
    -------
    pandas.DataFrame
        Float values; the row and column labels as printed, each as int where
        every one of them reads as an int. Column labels may hold single
        spaces when the columns have no name (pandas then sets the labels at
        least two spaces apart); under a name they must hold none.

    Raises
    ------
    LenetError
        If the notebook is missing or not a notebook, if not exactly one code
        cell has the tag, or if its output is not a table in that layout that
        reads back to the same print (not truncated, wrapped, or with rows
        that have no name).

    Examples
    --------
    >>> printed_table("09b_lenet5_new_seeds.ipynb",
    ...               "new-seed-errors")  # doctest: +SKIP
    """
    text = _tagged_output(Path(notebook), tag).rstrip("\n")
    table = _parse_table(text, f"{notebook}: the table tagged {tag!r}")
    # Reading back must give the same print: a truncated or wrapped table, or
    # one whose rows have no name, would otherwise be misread without a word.
    if repr(table) != text:
        raise LenetError(f"{notebook}: the table tagged {tag!r} could not be read back "
                         "exactly; it may be truncated ('...'), wrapped ('\\'), lack a "
                         "name for its rows, or hold a label with two spaces in it")
    return table


def _parse_table(text: str, where: str) -> pd.DataFrame:
    """The frame that pandas printed as ``text``, its rows named."""
    if any("..." in line.split() or line.endswith("\\") for line in text.splitlines()):
        raise LenetError(f"{where} was printed truncated ('...') or wrapped ('\\'): "
                         "display it whole where it is made")
    header, index_name, *rows = text.splitlines() + ["", ""]
    rows = [row for row in rows if row.strip()]
    if header[:1].isspace():
        columns_name, labels = None, re.split(r"\s{2,}", header.strip())
    else:
        columns_name, *labels = header.split() or [""]
    if not any(labels) or len(index_name.split()) != 1 or not rows:
        raise LenetError(f"{where} is not a table with named rows")
    values, names = [], []
    for row in rows:
        words = row.split()
        if len(words) <= len(labels):
            raise LenetError(f"{where}: row {row!r} has no label or fewer than "
                             f"{len(labels)} values")
        try:
            values.append([float(word) for word in words[-len(labels):]])
        except ValueError as error:
            raise LenetError(f"{where}: row {row!r} holds a value that is not a "
                             "number") from error
        names.append(" ".join(words[:-len(labels)]))
    return pd.DataFrame(values, index=_labels(names, index_name.strip()),
                        columns=_labels(labels, columns_name))


def _labels(labels: list[str], name: str | None) -> pd.Index:
    """An index of ``labels``, as ints where every one of them reads as an int."""
    numbered = all(label.lstrip("-").isdigit() for label in labels)
    return pd.Index([int(label) for label in labels] if numbered else labels, name=name)


def _tagged_output(notebook: Path, tag: str) -> str:
    """The ``text/plain`` output of the one code cell tagged ``tag``."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except FileNotFoundError as error:
        raise LenetError(f"{notebook} is missing (looked in {Path.cwd()}): the book's "
                         "chapters lie side by side in its notebooks/ folder; in Colab, "
                         f"upload {notebook.name} beside the notebook first") from error
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise LenetError(f"{notebook} is not a stored notebook: {error}") from error
    tagged = [cell for cell in cells if cell.get("cell_type") == "code"
              and tag in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise LenetError(f"{notebook}: {len(tagged)} code cells are tagged {tag!r}, "
                         "expected exactly one")
    for output in tagged[0].get("outputs", []):
        text = output.get("data", {}).get("text/plain")
        if text is not None:
            return "".join(text)
    raise LenetError(f"{notebook}: the cell tagged {tag!r} has no stored table; "
                     "execute that notebook first")
