"""What the CLI prints for people."""

from __future__ import annotations

import os

import pytest

from codeneedle import console
from codeneedle.indexer.types import SearchResult


def test_a_result_line_prints_names_and_code_as_written_not_as_emoji(capsys) -> None:
    """rich reads `:repeat:` as an emoji code: an Objective-C selector must print as the selector."""
    hit = SearchResult("Playback.m", 25, 31, "PlaybackQueue.initWithItems:repeat:", "method", "objc", 0.5,
                       "- (instancetype)initWithItems:(NSArray *)items repeat:(BOOL)repeat :smile:")
    console.print_results([hit])
    printed = capsys.readouterr().out
    assert "Playback.m:25: PlaybackQueue.initWithItems:repeat:  (method, objc, 0.500)" in printed
    assert "repeat:(BOOL)repeat :smile:" in printed


def test_a_notebooks_result_names_its_cell_and_the_line_in_it(capsys) -> None:
    hit = SearchResult("sales.ipynb", 35, 37, "load_sales", "function", "python", 0.5, "def load_sales(path):",
                       cell=2, cell_start_line=5, cell_end_line=7)
    console.print_results([hit])
    assert "sales.ipynb:35: load_sales  (function, python, 0.500; cell 2, line 5)" in capsys.readouterr().out


def test_lines_shows_that_many_lines_of_the_code_numbered_as_the_file_reads_now(capsys, tmp_path) -> None:
    (tmp_path / "retry.py").write_text("import time\n\n\ndef retry(fn, tries):\n    for _ in range(tries):\n"
                                       "        if fn():\n            return True\n    return False\n")
    hit = SearchResult("retry.py", 4, 8, "retry", "function", "python", 0.7, "def retry(fn, tries):")
    console.print_results([hit], tmp_path, lines=3)
    shown = capsys.readouterr().out.splitlines()[1:]
    assert [line.split(None, 1) for line in shown] == [
        ["4", "def retry(fn, tries):"], ["5", "for _ in range(tries):"], ["6", "if fn():"]]
    console.print_results([hit], tmp_path, lines=50)  # never past the end of the code
    assert capsys.readouterr().out.splitlines()[-1].split(None, 1) == ["8", "return False"]
    console.print_results([hit], tmp_path, lines=0)
    assert capsys.readouterr().out.splitlines() == [f"{tmp_path}/retry.py:4: retry  (function, python, 0.700)"]
    (tmp_path / "retry.py").unlink()  # gone since it was indexed: its snippet
    console.print_results([hit], tmp_path, lines=3)
    assert capsys.readouterr().out.splitlines()[1:] == ["      4 def retry(fn, tries):"]


def test_a_very_long_code_line_is_shown_clipped_with_what_is_left_out(capsys, tmp_path) -> None:
    """A data table in one line (690 KB with spaces, so no "minified" file) printed whole under -n, burying every
    other result; it is cut at 500 characters, saying how many more there are. Short lines are untouched."""
    table = "    return [" + ", ".join(str(i) for i in range(100_000)) + "]"
    (tmp_path / "table.py").write_text(f"def numbers():\n{table}\n")
    hit = SearchResult("table.py", 1, 2, "numbers", "function", "python", 0.7, "def numbers():")
    console.print_results([hit], tmp_path, lines=3)
    shown = capsys.readouterr().out.splitlines()
    assert shown[1] == "      1 def numbers():"
    assert shown[2] == f"      2 {table[:500]} … +{len(table) - 500} characters"
    assert len(shown) == 3


def test_backslashes_at_the_end_of_a_name_path_or_line_print_as_written(capsys, tmp_path) -> None:
    """Before a markup tag backslashes escape it, and rich's escape() adds one to an odd run at the end: a LaTeX
    line break (`\\\\`) ending a heading printed as one backslash, three of them printed the closing tag itself
    (and left the line bold), and a path ending in one backslash printed two."""
    for run in ("\\", "\\\\", "\\\\\\"):
        hit = SearchResult(f"notes{run}", 1, 2, f"Results {run}", "text", "markdown", 0.5, f"# Results {run}\nok")
        console.print_results([hit])
        assert capsys.readouterr().out.splitlines() == [
            f"notes{run}:1: Results {run}  (text, markdown, 0.500)", f"    # Results {run}"]
    (tmp_path / "table.tex").write_text("a & b \\\\\nc & d \\\\\\\n")
    hit = SearchResult("table.tex", 1, 2, "table", "text", "latex", 0.5, "a & b \\\\")
    console.print_results([hit], tmp_path, lines=2)
    assert capsys.readouterr().out.splitlines()[1:] == ["      1 a & b \\\\", "      2 c & d \\\\\\"]
    console.print_table("t", [("root", "C:\\"), ("name", "x\\\\")])
    table = capsys.readouterr().out
    assert "│ C:\\ │" in table and "│ x\\\\ │" in table


def test_a_tab_in_a_file_name_or_heading_is_shown_and_code_keeps_its_indentation(capsys, tmp_path) -> None:
    """A tab in a name was expanded like indentation: `a<TAB>b.py` read as `a       b.py` (no such file) and
    pushed the rest of the line along. Names show `\\t`; code lines keep their tabs, expanded to tab stops."""
    (tmp_path / "a\tb.py").write_text("def f():\n\treturn 1\n")
    hit = SearchResult("a\tb.py", 1, 2, "Totals\tby month", "text", "markdown", 0.5, "def f():\n\treturn 1")
    console.print_results([hit], tmp_path, lines=2)
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"{tmp_path}/a\\tb.py:1: Totals\\tby month  (text, markdown, 0.500)"
    assert shown[2] == "      2         return 1"  # the tab, to the next stop after the 8-column gutter


@pytest.mark.timeout(60)  # a hang guard: the FIFO blocked the open for good
def test_lines_of_a_file_that_became_a_fifo_or_dev_zero_come_from_the_snippet(capsys, tmp_path) -> None:
    """While the index is stale (--no-refresh, or an editor's server is its writer) a result's file may have been
    replaced: `-n 3` hung on a FIFO and read /dev/zero until memory ran out. The snippet stands in."""
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    for name in ("pipe.py", "zero.py"):
        hit = SearchResult(name, 1, 2, "value", "function", "python", 0.7, "def value(v):\n    return v + 1")
        console.print_results([hit], tmp_path, lines=3)
        assert capsys.readouterr().out.splitlines()[1:] == ["      1 def value(v):", "      2     return v + 1"]


def test_lines_read_from_the_file_hide_tokens_as_every_snippet_does(capsys, tmp_path) -> None:
    github, aws = "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyz", "AKIA" + "IOSFODNN7EXAMPLE"
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    (tmp_path / "deploy.py").write_text(f'def deploy():\n    token = "{github}"\n    KEY = """{key}"""\n'
                                        f'    key_id = "{aws}"\n    return token\n')
    hit = SearchResult("deploy.py", 1, 7, "deploy", "function", "python", 0.7, "def deploy():")
    console.print_results([hit], tmp_path, lines=7)
    shown = capsys.readouterr().out
    assert github not in shown and aws not in shown and "b3BlbnNzaC1rZXktdjEAAAAA" not in shown
    assert '      2     token = "[REDACTED github-token]"' in shown.splitlines()
    assert '      6     key_id = "[REDACTED aws-access-key-id]"' in shown.splitlines()  # lines still line up


def test_lines_are_never_read_from_a_file_outside_the_root(capsys, tmp_path) -> None:
    """A file swapped for a link to a private file since it was indexed, or a ``../`` path in an index that came
    with a repository: the lines come from the stored snippet, never from the file outside."""
    outside, root = tmp_path / "private", tmp_path / "repo"
    outside.mkdir()
    root.mkdir()
    (outside / "notes.py").write_text("def mine():\n    return 'PRIVATE LINE'\n")
    (root / "app.py").symlink_to(outside / "notes.py")
    for path in ("app.py", "../private/notes.py"):
        hit = SearchResult(path, 1, 2, "parse", "function", "python", 0.7, "def parse(text):\n    return text")
        console.print_results([hit], root, lines=2)
        shown = capsys.readouterr().out
        assert "PRIVATE LINE" not in shown and "      2     return text" in shown.splitlines()


def test_a_table_value_wider_than_the_terminal_wraps_whole_instead_of_being_cut(capsys) -> None:
    """`needle status` of a repository at a deep path, piped (80 columns): the root and index paths were cut with
    an ellipsis, so the table named no folder at all. They wrap, and read back whole."""
    root = "/home/someone/projects/" + "a-very-long-folder-name-for-a-project/" * 3 + "repo"
    console.print_table("Needle index", [("root", root), ("state", "ready")])
    table = capsys.readouterr().out
    assert "…" not in table
    values = [line.split("│")[2].strip() for line in table.splitlines() if line.count("│") == 3]
    assert "".join(values[:-1]) == root and values[-1] == "ready"


def test_the_training_summary_table_shows_a_path_with_brackets_as_it_is(capsys) -> None:
    """`needle train --repo proj[red]/ --adapter` printed the adapter's path as `proj/...` (rich read `[red]` as
    markup): the table named a file that is not there. Values are shown as written, control characters visible."""
    import argparse

    from codeneedle.cli_train import _report

    path = "/home/me/proj[red]/x[/]y/.needle/query_adapter.npz"
    _report(argparse.Namespace(json=False), "query adapter", {"adapter": path, "note": "a\x1b[2Jb"})
    table = capsys.readouterr().out
    assert path in table and "a\\x1b[2Jb" in table and "\x1b" not in table
