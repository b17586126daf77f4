import json
from pathlib import Path

import pandas as pd
import pytest

from lenet_utils import LenetError
from lenet_utils.stored import printed_table

PIVOT = pd.DataFrame(
    {"recipe": ["as published"] * 2 + ["with distortions"] * 2, "seed": [3, 4] * 2,
     "test error (%)": [1.06, 0.98, 0.9, 0.78]}
).pivot(index="recipe", columns="seed", values="test error (%)")


def write_notebook(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def table_cell(text, tags=("errors",)):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": "",
            "outputs": [{"output_type": "execute_result",
                         "data": {"text/plain": text.splitlines(keepends=True)}}]}


def test_printed_table_reads_back_what_pandas_printed(tmp_path):
    path = write_notebook(tmp_path / "a.ipynb", [
        {"cell_type": "markdown", "metadata": {"tags": ["errors"]}, "source": ""},
        table_cell(repr(PIVOT)),
    ])
    pd.testing.assert_frame_equal(printed_table(path, "errors"), PIVOT)


def test_printed_table_keeps_labels_that_are_not_numbers(tmp_path):
    table = PIVOT.rename(columns={3: "a", 4: "bx"})
    path = write_notebook(tmp_path / "a.ipynb", [table_cell(repr(table))])
    assert list(printed_table(path, "errors").columns) == ["a", "bx"]


@pytest.mark.parametrize("cells, message", [
    ([], "0 code cells are tagged 'errors'"),
    ([table_cell(repr(PIVOT))] * 2, "2 code cells"),
    ([table_cell(repr(PIVOT), tags=("other",))], "0 code cells"),
    ([{**table_cell(""), "outputs": []}], "no stored table"),
    ([table_cell("just one line\n")], "not a table"),
    ([table_cell("seed  3  4\nrecipe\npublished  1.06\n")], "fewer than 2 values"),
    ([table_cell("seed  3  4\nrecipe\nas published  1.06  n/a\n")], "not a number"),
    ([table_cell("seed  3  4\nrecipe\n")], "not a table"),
])
def test_printed_table_refuses_what_it_cannot_read(tmp_path, cells, message):
    path = write_notebook(tmp_path / "a.ipynb", cells)
    with pytest.raises(LenetError, match=message):
        printed_table(path, "errors")


def test_printed_table_reads_columns_without_a_name(tmp_path):
    # As chapter 9c prints its runs: seeds down, labels with spaces across.
    runs = pd.DataFrame({"test error (%)": [1.39, 1.35], "training error (%)": [0.9, 0.81]},
                        index=pd.Index([0, 1], name="seed"))
    for table in [runs, PIVOT.rename_axis(columns=None)]:
        path = write_notebook(tmp_path / "a.ipynb", [table_cell(repr(table))])
        pd.testing.assert_frame_equal(printed_table(path, "errors"), table)


def test_printed_table_refuses_a_table_it_would_misread(tmp_path):
    double_spaced = pd.DataFrame({"test  error": [1.39]}, index=pd.Index([0], name="seed"))
    with pd.option_context("display.max_columns", 2):
        truncated = repr(PIVOT.reindex(columns=[3, 4, 5], fill_value=1.0))
    for text, message in [(repr(double_spaced), "fewer than 2 values"),
                          (truncated, "printed truncated"),
                          (repr(PIVOT) + "  ", "could not be read back exactly")]:
        path = write_notebook(tmp_path / "a.ipynb", [table_cell(text)])
        with pytest.raises(LenetError, match=message):
            printed_table(path, "errors")


def test_printed_table_names_a_missing_or_broken_notebook(tmp_path):
    with pytest.raises(LenetError, match="absent.ipynb is missing"):
        printed_table(tmp_path / "absent.ipynb", "errors")
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    with pytest.raises(LenetError, match="is not a stored notebook"):
        printed_table(tmp_path / "broken.ipynb", "errors")


# Each chapter's summary printed these means of the same stored outputs.
@pytest.mark.parametrize("notebook, tag, seeds, means", [
    ("09b_lenet5_new_seeds.ipynb", "new-seed-errors", [3, 4, 5, 6, 7], [1.064, 0.912]),
    ("09h_lenet5_more_seeds.ipynb", "more-seed-errors", [8, 9, 10, 11, 12],
     [1.086, 0.922]),
])
def test_later_chapters_read_the_stored_errors(notebook, tag, seeds, means):
    errors = printed_table(Path(__file__).parents[1] / "notebooks" / notebook, tag)
    assert list(errors.index) == ["as published", "with distortions"]
    assert list(errors.columns) == seeds
    assert list(errors.mean(axis=1).round(3)) == means


def test_chapter_9i_reads_chapter_9cs_stored_sdlm_errors():
    chapter_9c = Path(__file__).parents[1] / "notebooks" / "09c_sdlm_at_the_papers_mu.ipynb"
    # Chapter 9c gives these means, 1.37 ± 0.02% and 1.17 ± 0.10%.
    for tag, mean in [("sdlm-errors", 1.37), ("sdlm-distorted-errors", 1.17)]:
        errors = printed_table(chapter_9c, tag)["test error (%)"]
        assert list(errors.index) == [0, 1, 2]
        assert round(errors.mean(), 3) == mean
