"""The kind filter: only functions, only classes, every named definition; as each door takes it."""

from __future__ import annotations

import json

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer.filters import kind_filter
from tests.conftest import copy_fixture, run_needle


@pytest.mark.parametrize(("given", "kinds"), [
    (None, ()),
    ("function", ("function",)),
    ("Function, methods", ("function", "method")),
    (["class", "type"], ("class",)),
    ("def", ("function", "method", "class")),
])
def test_kinds_are_read_as_people_write_them(given, kinds):
    assert kind_filter(given) == kinds


@pytest.mark.parametrize(("given", "message"), [
    ("funtion", "unknown kind 'funtion'; known: function, method, class, block, text"),
    ("", "kind '' names no kind"),
    (",", "kind ',' names no kind"),
])
def test_a_bad_kind_is_a_one_line_error(given, message):
    with pytest.raises(NeedleError, match=message):
        kind_filter(given)


@pytest.mark.slow
def test_the_cli_keeps_only_the_kinds_asked_for(tmp_path):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", str(repo), "-q").returncode == 0

    def kinds(*flags: str) -> list[str]:
        proc = run_needle("search", "--json", "--no-refresh", "--path", str(repo), "-k", "20", *flags,
                          "parse a config file")
        assert proc.returncode == 0, proc.stderr
        return [r["kind"] for r in json.loads(proc.stdout)["results"]]

    everything = kinds()
    assert len(set(everything)) > 1, everything  # the fixture answers with several kinds
    assert set(kinds("--kind", "class")) == {"class"}
    definitions, code = kinds("--kind", "def"), kinds("--kind", "function,method")
    assert definitions and set(definitions) <= {"function", "method", "class"}, definitions
    assert code and set(code) <= {"function", "method"}, code
    bad = run_needle("search", "--no-refresh", "--path", str(repo), "--kind", "funtion", "x")
    assert bad.returncode == 1 and "unknown kind 'funtion'" in bad.stderr
