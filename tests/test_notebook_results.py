"""A result inside a Jupyter notebook names its cell and its lines in that cell (what a notebook editor opens),
through the real index over the real chunker and encoder; Find Similar works from a cell, saved or edited."""

from __future__ import annotations

import shutil

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer.index import Index
from tests.conftest import FIXTURES

HELPERS = '''import csv


def read_rows(path):
    """Read the rows of a CSV file."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
'''


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    repo = tmp_path_factory.mktemp("notebooks") / "repo"
    repo.mkdir()
    shutil.copy(FIXTURES / "formats" / "sales.ipynb", repo / "sales.ipynb")
    (repo / "helpers.py").write_text(HELPERS)
    idx = Index.open(repo)
    idx.update()
    yield idx
    idx.close()


def test_a_notebook_result_names_its_cell_and_its_lines_there(index):
    top = index.search("read the monthly sales csv into a data frame", k=3)[0]
    assert (top.path, top.name, top.start_line, top.end_line) == ("sales.ipynb", "load_sales", 35, 37)
    assert (top.cell, top.cell_start_line, top.cell_end_line) == (2, 5, 7)
    assert top.to_dict()["cell"] == 2 and top.to_dict()["cell_start_line"] == 5


def test_a_cell_written_as_one_string_still_gives_the_lines_in_the_cell(index):
    fit = next(r for r in index.search("Trend.fit", k=5) if r.name == "Trend.fit")
    assert (fit.start_line, fit.end_line) == (48, 48)  # the whole source is one JSON string on line 48
    assert (fit.cell, fit.cell_start_line, fit.cell_end_line) == (3, 2, 3)


def test_a_result_outside_a_notebook_has_no_cell(index):
    rows = next(r for r in index.search("read the rows of a csv file", k=5) if r.path == "helpers.py")
    assert rows.cell == 0 and not {"cell", "cell_start_line", "cell_end_line"} & set(rows.to_dict())


def test_similar_from_a_line_of_a_saved_cell(index):
    results = index.similar("sales.ipynb", 6, k=5, cell=2)  # line 6 of cell 2: inside load_sales
    assert results == index.similar("sales.ipynb", 36, k=5)  # the same function by its line in the .ipynb
    assert "read_rows" in [r.name for r in results] and "load_sales" not in [r.name for r in results]
    with pytest.raises(NeedleError, match="no indexed code at sales.ipynb cell 9 line 1"):
        index.similar("sales.ipynb", 1, k=3, cell=9)


def test_similar_from_a_cell_with_unsaved_edits(index):
    edited = "import pandas as pd\n\n\ndef load_sales(path, sep=';'):\n    return pd.read_csv(path, sep=sep)\n"
    names = [r.name for r in index.similar("sales.ipynb", 5, k=5, text=edited, cell=2)]
    assert "read_rows" in names and "load_sales" not in names  # its saved version left out
    with pytest.raises(NeedleError, match="no code at sales.ipynb cell 2 line 40"):
        index.similar("sales.ipynb", 40, k=3, text=edited, cell=2)


def test_an_agent_asks_for_code_like_a_cell_s_function_by_its_cell_and_line_there(index):
    from codeneedle.server.mcp_server import NeedleMCP, ToolError

    agent = NeedleMCP(index.root)
    try:
        by_cell = agent.similar("sales.ipynb", 6, k=5, cell=2)
        assert by_cell["cell"] == 2
        assert by_cell["results"] == agent.similar("sales.ipynb", 36, k=5)["results"]  # its line in the .ipynb
        with pytest.raises(ToolError, match="cell must be at least 1"):
            agent.similar("sales.ipynb", 6, cell=0)
    finally:
        agent.close()
