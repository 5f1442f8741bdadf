"""`needle similar FILE:LINE` from the shell: code like the function at a line, as the editors' Find Similar Code
and MCP's `similar` answer it (one library behind every door)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, copy_fixture, run_needle

pytestmark = pytest.mark.slow  # `needle` subprocesses


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_fixture("minirepo", tmp_path_factory.mktemp("similar") / "minirepo")
    shutil.copy(FIXTURES / "formats" / "sales.ipynb", repo / "sales.ipynb")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)  # its root, as for `needle search`
    return repo


def _answer(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_code_like_the_function_at_a_line_leaves_that_function_out(repo):
    # No index yet: it is built first, as `needle search` does.
    answer = _answer(run_needle("similar", "src/config/loader.py:10", "--json", "-k", "5", cwd=repo))
    assert (answer["path"], answer["line"], answer["partial"]) == ("src/config/loader.py", 10, False)
    assert answer["root"] == str(repo.resolve())  # what `path` and the results' paths are relative to
    names = [r["name"] for r in answer["results"]]
    assert len(names) == 5 and "load_json_config" not in names
    # grep -n / rg --vimgrep style (with the colon that follows, as copied), from another folder: the same answer
    again = _answer(run_needle("similar", f"{repo}/src/config/loader.py:10:5:", "--json", "-k", "5", cwd=repo.parent))
    assert again["results"] == answer["results"]


def test_people_get_the_lines_search_prints(repo):
    proc = run_needle("similar", "loader.py:10", "-k", "2", cwd=repo / "src" / "config")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.split(":")[0].endswith((".py", ".go", ".ts", ".rb", ".c", ".java", ".md")), first


def test_a_notebook_cell_and_its_line_name_the_code_as_the_notebook_shows_it(repo):
    by_cell = _answer(run_needle("similar", "sales.ipynb:6", "--cell", "2", "--json", cwd=repo))
    by_file_line = _answer(run_needle("similar", "sales.ipynb:36", "--json", cwd=repo))
    assert by_cell["cell"] == 2 and by_cell["results"] == by_file_line["results"]


@pytest.mark.parametrize(("location", "message"), [
    ("src/config/loader.py", "give FILE:LINE"),
    ("src/config/loader.py:0", "lines are counted from 1"),
    ("src/config/nothere.py:3", "path does not exist"),
    ("src/config:3", "not a file"),
    ("src/config/loader.py:9999", "no indexed code at src/config/loader.py:9999"),
])
def test_a_location_that_names_no_code_is_a_one_line_error(repo, location, message):
    proc = run_needle("similar", location, cwd=repo)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("needle: error:") and message in proc.stderr, proc.stderr


def test_lines_shows_each_result_s_code_for_search_and_similar_alike(repo):
    for command in (("similar", "src/config/loader.py:10"), ("search", "load a json config file")):
        proc = run_needle(*command, "-k", "1", "--lines", "3", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        header, *code = proc.stdout.splitlines()
        path, line = header.split(":")[:2]
        assert [c.split(None, 1)[0] for c in code] == [str(int(line) + i) for i in range(len(code))], code
        assert 1 <= len(code) <= 3 and (repo / path).read_text().splitlines()[int(line) - 1].strip() in code[0]
    refused = run_needle("search", "x", "--lines", "-1", cwd=repo)
    assert refused.returncode == 1 and "--lines -1: give 0 (no code) or more lines" in refused.stderr


def test_a_file_whose_name_ends_like_a_line_number_is_that_file(tmp_path):
    """`notes.py:3` is a file name a repository may hold: `needle similar notes.py:3:1` read it as notes.py at line
    3, column 1 (the grep -n form), and answered for another file's code."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "notes.py").write_text("import os\n\n\ndef read_notes(path):\n    return open(path).read()\n")
    (repo / "notes.py:3").write_text("def add_one(value):\n    return value + 1\n")
    (repo / "sums.py").write_text("def add_two(value):\n    return value + 2\n")
    answer = _answer(run_needle("similar", "notes.py:3:1", "--json", "-k", "1", cwd=repo))
    assert (answer["path"], answer["line"]) == ("notes.py:3", 1)
    assert [r["name"] for r in answer["results"]] == ["add_two"]
    column = _answer(run_needle("similar", "notes.py:4:5", "--json", "-k", "1", cwd=repo))  # no file `notes.py:4`
    assert (column["path"], column["line"]) == ("notes.py", 4)
