"""What the CLI prints for people."""

from __future__ import annotations

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
