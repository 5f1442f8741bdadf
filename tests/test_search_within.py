"""A search that names a folder or file inside a repository answers from there only, as `rg` and `grep -r` do,
with the repository's one index; with no PATH it searches the whole repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer.collection import Collection
from codeneedle.indexer.filters import path_within, within_paths
from codeneedle.indexer.index import Index
from codeneedle.server.mcp_server import NeedleMCP
from tests.conftest import copy_fixture, run_needle

QUERY = "retry a call with exponential backoff"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_fixture("minirepo", tmp_path_factory.mktemp("within") / "minirepo")
    (repo / "empty").mkdir()
    proc = run_needle("index", "--quiet", str(repo))
    assert proc.returncode == 0, proc.stderr
    return repo


def _paths(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return [r["path"] for r in json.loads(proc.stdout)["results"]]


def test_within_paths_are_relative_to_the_root_and_never_leave_it():
    assert within_paths(["./src/", "src", "web/format.ts"]) == ("src", "web/format.ts")
    assert within_paths(["src", "."]) == ()  # the root itself: all of it
    for outside in ("../other", "/etc", "src/../../x"):
        with pytest.raises(NeedleError, match="not inside the repository"):
            within_paths(outside)
    assert path_within("src/net/retry.go", ("src/net",)) and path_within("src/net/retry.go", ("src/net/retry.go",))
    assert not path_within("src/network.go", ("src/net",))  # a folder, not a prefix of a name


@pytest.mark.slow
def test_a_folder_named_on_the_command_line_narrows_the_search_to_it(repo):
    assert _paths(run_needle("search", QUERY, str(repo), "--json"))[0] == "src/net/retry.go"
    narrowed = _paths(run_needle("search", QUERY, str(repo / "src" / "config"), "--json"))
    assert narrowed and all(p.startswith("src/config/") for p in narrowed), narrowed


@pytest.mark.slow
def test_a_file_named_on_the_command_line_narrows_the_search_to_that_file(repo):
    assert set(_paths(run_needle("search", QUERY, "web/format.ts", "--json", cwd=repo))) == {"web/format.ts"}


@pytest.mark.slow
def test_dot_in_a_subfolder_is_that_subfolder_and_no_path_is_the_whole_repository(repo):
    here = _paths(run_needle("search", QUERY, ".", "--json", "-k", "50", cwd=repo / "src"))
    assert here and all(p.startswith("src/") for p in here), here
    everywhere = _paths(run_needle("search", QUERY, "--json", "-k", "50", cwd=repo / "src"))
    assert any(not p.startswith("src/") for p in everywhere), everywhere


@pytest.mark.slow
def test_two_folders_of_one_repository_answer_from_both_and_nowhere_else(repo):
    proc = run_needle("search", QUERY, "src/net", "web", "--json", "-k", "50", cwd=repo)
    found = {p.split("/")[0] for p in _paths(proc)}
    assert found == {"src", "web"} and all(not p.startswith("src/") or p.startswith("src/net/")
                                           for p in _paths(proc))


@pytest.mark.slow
def test_a_folder_without_indexed_files_says_so_rather_than_answering_nothing_silently(repo):
    proc = run_needle("search", QUERY, str(repo / "empty"))
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout
    assert "no indexed file under empty" in proc.stderr, proc.stderr
    (repo / "empty2").mkdir(exist_ok=True)  # two of them: a search that names several says it too
    proc = run_needle("search", QUERY, "empty", "empty2", cwd=repo)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout
    assert "no indexed file under empty, empty2" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_the_library_narrows_with_globs_and_across_repositories(repo, tmp_path):
    other = copy_fixture("minirepo", tmp_path / "other")
    with Index.open(other) as index:
        index.update()
    with Index.open(repo) as index:
        both = index.search(QUERY, k=50, within=["src", "web"], glob="**/*.go")
        assert {r.path for r in both} == {"src/net/retry.go"}
        with pytest.raises(NeedleError, match="not inside the repository"):
            index.search(QUERY, within="../other")
    with Collection.open([repo, other]) as many:
        results = many.search(QUERY, k=50, within=[repo / "web", other])
    assert {r.repo for r in results} == {str(repo), str(other)}
    assert all(r.path == "web/format.ts" for r in results if r.repo == str(repo))
    assert any(r.path != "web/format.ts" for r in results if r.repo == str(other))
    with Collection.open([repo, other]) as many:  # a repository none of the paths is in gives nothing
        assert {r.repo for r in many.search(QUERY, k=50, within=[repo / "src"])} == {str(repo)}


@pytest.mark.slow
def test_an_agent_narrows_with_mcp_path_a_folder_or_file_inside_the_served_root(repo):
    agent = NeedleMCP(repo)
    try:
        folder = agent.search(QUERY, k=50, path="src/hash")["results"]
        assert folder and {r["path"] for r in folder} == {"src/hash/checksum.c"}
        one_file = agent.search(QUERY, k=50, path=str(repo / "web" / "format.ts"))["results"]
        assert {r["path"] for r in one_file} == {"web/format.ts"}
        assert len(agent.search(QUERY, k=50, path=".")["results"]) > len(folder)
        assert "no indexed file under empty" in agent.search(QUERY, path="empty")["note"]
    finally:
        agent.close()
