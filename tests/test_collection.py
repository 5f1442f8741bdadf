"""Several repositories searched as one: each keeps its own index, results merge by score and name their repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer.collection import Collection, read_collection
from codeneedle.indexer.merge import merge_ranked
from tests.conftest import NEEDLE, copy_fixture, run_needle

pytestmark = pytest.mark.slow  # several indexes, CLI subprocesses, LSP and MCP servers


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> tuple[Path, Path]:
    """minirepo and polyglot, each indexed on its own (the shards a collection searches)."""
    base = tmp_path_factory.mktemp("collection")
    a, b = copy_fixture("minirepo", base / "minirepo"), copy_fixture("polyglot", base / "polyglot")
    for repo in (a, b):
        assert run_needle("index", str(repo), "-q").returncode == 0
    return a, b


def _search(*args: str) -> list[dict]:
    proc = run_needle("search", "--json", "--no-refresh", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["results"]


def test_each_result_names_its_repository_and_the_merge_is_by_score(repos):
    a, b = repos
    query = "parse a configuration file"
    merged = _search("--path", str(a), "--path", str(b), "-k", "8", query)
    alone = {repo: _search("--path", str(repo), "-k", "8", query) for repo in (a, b)}

    assert merged and {r["repo"] for r in merged} <= {str(a), str(b)}
    # The merge takes the shards' own top-k lists by their heads: each repository's results keep the order a
    # search of that repository alone gives them (its ranking rules), interleaved by score, cut to k.
    for repo, rs in alone.items():
        own = [(r["path"], r["start_line"]) for r in merged if r["repo"] == str(repo)]
        assert own == [(r["path"], r["start_line"]) for r in rs][: len(own)]
    heads = {str(repo): rs for repo, rs in alone.items()}
    for r in merged:
        # What came next was the better of the two lists' current heads.
        others = [rs[0]["score"] for repo, rs in heads.items() if rs and repo != r["repo"]]
        assert all(r["score"] >= s for s in others)
        heads[r["repo"]] = heads[r["repo"]][1:]


def test_code_from_either_repository_comes_first_for_its_own_description(repos):
    a, b = repos
    top = _search("--path", str(a), "--path", str(b), "-k", "1", "crc32 checksum of bytes")[0]
    assert (top["repo"], top["path"], top["name"]) == (str(a), "src/hash/checksum.c", "crc32_checksum")
    top = _search("--path", str(a), "--path", str(b), "-k", "1", "bank account withdraw money")[0]
    assert (top["repo"], top["path"]) == (str(b), "BankAccount.java")


def test_ranked_lists_merge_by_their_heads_and_keep_their_order():
    # Shard 0 ranks its definition above its own test although the test's cosine is higher.
    shard0 = [("impl", 0.55), ("impl_test", 0.70)]
    shard1 = [("other", 0.60), ("other2", 0.20)]
    merged = merge_ranked([shard0, shard1], 4, score=lambda t: t[1])
    assert [name for name, _ in merged] == ["other", "impl", "impl_test", "other2"]
    assert merge_ranked([[("b", 0.5)], [("a", 0.5)]], 2, score=lambda t: t[1]) == [("b", 0.5), ("a", 0.5)]
    assert merge_ranked([shard0, shard1], 0, score=lambda t: t[1]) == []


def test_a_collection_file_lists_repositories_relative_to_itself(repos, tmp_path):
    a, b = repos
    listing = a.parent / "repos.txt"
    listing.write_text("# our repositories\nminirepo\n\n" + str(b) + "\n")
    assert read_collection(listing) == [a, b]
    by_file = _search("--collection", str(listing), "-k", "5", "retry with backoff")
    by_paths = _search("--path", str(a), "--path", str(b), "-k", "5", "retry with backoff")
    assert by_file == by_paths


def test_a_collection_of_one_searches_that_repository_wherever_it_is_run_from(repos, tmp_path):
    a, _ = repos
    listing = tmp_path / "one.txt"
    listing.write_text(f"{a}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_needle("search", "--json", "--no-refresh", "--collection", str(listing), "-k", "1",
                      "crc32 checksum of bytes", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    (top,) = json.loads(proc.stdout)["results"]
    assert (top["repo"], top["name"]) == (str(a), "crc32_checksum")  # named as several are, with its repo
    assert not (elsewhere / ".needle").exists()  # the folder it was run from is not indexed
    link = tmp_path / "link"
    link.symlink_to(a)
    assert _search("--path", str(a), "--path", str(link), "-k", "1", "crc32 checksum of bytes")[0]["repo"] == str(a)


def test_a_repository_inside_another_gives_each_result_once(tmp_path):
    outer = copy_fixture("minirepo", tmp_path / "outer")
    inner = copy_fixture("polyglot", outer / "vendor" / "polyglot")
    for repo in (outer, inner):
        (repo / ".git").mkdir()
    found = _refreshed_search("--path", str(outer), "--path", str(inner), "-k", "10", "bank account withdraw money")
    where = [(r["repo"], r["path"], r["start_line"]) for r in found]
    files = [str(Path(repo) / path) + f":{line}" for repo, path, line in where]
    assert len(files) == len(set(files)), where
    assert (str(inner), "BankAccount.java") in [(r, p) for r, p, _ in where]


def _refreshed_search(*args: str) -> list[dict]:
    proc = run_needle("search", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["results"]


def test_a_repository_whose_name_is_not_utf8_still_gives_valid_json(repos, tmp_path):
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xffname"))
    copy_fixture("polyglot", odd)
    proc = subprocess.run([str(NEEDLE), "search", "--json", "--path", str(repos[0]), "--path", odd, "-k", "3",
                           "bank account withdraw money"], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    answer = json.loads(proc.stdout.decode("utf-8"))  # strict UTF-8: no raw 0xFF byte in it
    assert str(odd) in {r["repo"] for r in answer["results"]}


def test_people_see_paths_they_can_open(repos):
    a, b = repos
    proc = run_needle("search", "--no-refresh", "--path", str(a), "--path", str(b), "-k", "1",
                      "crc32 checksum of bytes", cwd=a.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("minirepo/src/hash/checksum.c:5:")


def test_a_glob_written_from_a_subfolder_starts_there_across_several_repositories(repos):
    """From minirepo/src, ``--glob ./config/**`` is src/config/** as in minirepo's own search; across several it was
    read from each root: no results, and a note about the glob '/config/**'."""
    a, b = repos
    query = ("parse a config file", "--path", str(a), "--path", str(b), "-k", "50")
    proc = run_needle("search", "--json", "--no-refresh", *query, "--glob", "./config/**", cwd=a / "src")
    assert proc.returncode == 0, proc.stderr
    found = [(r["repo"], r["path"]) for r in json.loads(proc.stdout)["results"]]
    assert found and all(repo == str(a) and path.startswith("src/config/") for repo, path in found), found
    proc = run_needle("search", "--json", "--no-refresh", *query, "-k", "1000", "--glob", "!./config/**",
                      cwd=a / "src")
    left = [(r["repo"], r["path"]) for r in json.loads(proc.stdout)["results"]]
    assert not any(path.startswith("src/config/") for _, path in left), left
    assert {str(a), str(b)} <= {repo for repo, _ in left}  # the other repository reads it from its own root


def test_a_collection_line_naming_no_folder_is_named_and_the_others_still_answer(repos, tmp_path):
    listing = tmp_path / "repos.txt"
    listing.write_text(f"{repos[0]}\nno/such/repo\n{repos[1]}\n")
    error = f"needle: error: {listing}:2: not a folder: no/such/repo"
    proc = run_needle("search", "--json", "--collection", str(listing), "parse a config file", "-k", "50")
    assert proc.returncode == 1  # the answer is not whole: scripts can tell
    assert error in proc.stderr.splitlines()
    answer = json.loads(proc.stdout)
    assert {r["repo"] for r in answer["results"]} == {str(repos[0]), str(repos[1])}
    assert answer["errors"] == [{"collection": f"{listing}:2", "error": f"{listing}:2: not a folder: no/such/repo"}]
    proc = run_needle("index", "--json", "--collection", str(listing))
    assert proc.returncode == 1 and error in proc.stderr.splitlines()
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"collection": f"{listing}:2", "error": f"{listing}:2: not a folder: no/such/repo"}
    assert [line["repo"] for line in lines[1:]] == [str(repos[0]), str(repos[1])]
    assert "1 of 3 repositories not indexed" in proc.stderr
    proc = run_needle("status", "--json", "--collection", str(listing))
    states = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and {"collection": f"{listing}:2", "state": "none"}.items() <= states[0].items()
    assert [s["state"] for s in states[1:]] == ["ready", "ready"]


def test_a_collection_naming_no_folder_at_all_is_one_clear_error(repos, tmp_path):
    listing = tmp_path / "repos.txt"
    listing.write_text("# gone\nno/such/repo\n")
    proc = run_needle("search", "--collection", str(listing), "anything")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"needle: error: {listing}:2: not a folder: no/such/repo"


def test_one_index_dir_for_several_repositories_is_refused(repos, tmp_path):
    proc = run_needle("search", "--path", str(repos[0]), "--path", str(repos[1]), "--index-dir",
                      str(tmp_path / "idx"), "anything")
    assert proc.returncode == 1
    assert "--index-dir names one repository's index" in proc.stderr


def test_the_library_collection_shares_one_query_vector_and_closes_every_shard(repos):
    with Collection.open(repos, create=False) as collection:
        results = collection.search("least recently used cache eviction", k=3)
        assert results[0].repo == str(repos[0]) and results[0].name.startswith("LruCache")
        shards = collection.indexes
    assert all(not ix.is_writer for ix in shards)
    with pytest.raises(NeedleError, match="no index"):
        Collection.open([repos[0], repos[0].parent], create=False)


def test_a_query_too_long_for_every_repository_is_refused_before_it_is_encoded(repos, monkeypatch):
    with Collection.open(repos, create=False) as collection:
        encoder = collection.indexes[0].encoder
        monkeypatch.setattr(encoder, "encode_queries", lambda *a, **k: pytest.fail("encoded a refused query"))
        with pytest.raises(NeedleError, match="query is too long"):
            collection.search("x" * 5_000)


def test_several_repositories_are_indexed_in_one_run(tmp_path):
    a, b = copy_fixture("minirepo", tmp_path / "a"), copy_fixture("polyglot", tmp_path / "b")
    proc = run_needle("index", "--json", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["repo"] for line in lines] == [str(a), str(b)]
    assert all(line["chunks_added"] > 0 for line in lines)


def test_one_repository_that_cannot_be_indexed_does_not_stop_the_others(tmp_path):
    from codeneedle.indexer.index import Index

    a, b, c = (copy_fixture("minirepo", tmp_path / name) for name in "abc")
    with Index.open(b) as held, held.writing():  # as a `needle watch` there would
        proc = run_needle("index", "--json", str(a), str(b), str(c))
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["repo"] for line in lines] == [str(a), str(b), str(c)]
    assert "being written by another needle process" in lines[1]["error"]
    assert lines[0]["chunks_added"] > 0 and lines[2]["chunks_added"] > 0
    assert proc.stderr.strip().endswith(f"1 of 3 repositories not indexed: {b}")
    proc = run_needle("index", "--ray-workers", "2", str(a))
    assert proc.returncode == 1 and "go with --ray" in proc.stderr


def test_without_ray_nothing_imports_ray(repos, tmp_path):
    """`ray` is an optional extra: indexing and searching several repositories never load it."""
    code = (
        "import sys\nfrom codeneedle.cli import main\n"
        f"assert main(['index', '-q', {str(repos[0])!r}, {str(repos[1])!r}]) == 0\n"
        f"assert main(['search', '--json', '--path', {str(repos[0])!r}, '--path', {str(repos[1])!r}, 'retry']) == 0\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray was imported'\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr


def test_the_language_server_searches_its_extra_roots(repos):
    """`extraRoots` in initializationOptions: those repositories are indexed and searched with the folder."""
    from tests.lsp.rawclient import RawClient

    a, b = repos
    c = RawClient()
    try:
        c.initialize(a, options={"extraRoots": [str(b), str(b / "gone"), "relative/lib"]})
        st = c.wait_ready()
        assert sorted(f["root"] for f in st["folders"]) == sorted([str(a), str(b)])
        shown = [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]
        assert f"Needle: extraRoots: {b / 'gone'} does not exist" in shown, shown
        assert any("relative/lib is not an absolute path" in m for m in shown), shown
        hits = c.command("needle.search", {"query": "bank account withdraw money", "k": 3})["result"]
        assert hits[0]["uri"] == (b / "BankAccount.java").as_uri()
        hits = c.command("needle.search", {"query": "crc32 checksum of bytes", "k": 3})["result"]
        assert hits[0]["uri"] == (a / "src/hash/checksum.c").as_uri()
    finally:
        assert c.close() == 0


async def test_the_mcp_server_searches_its_extra_roots(repos, tmp_path):
    """`needle mcp --extra-root B`: a search without a path covers both repositories, each result naming its repo."""
    pytest.importorskip("mcp")
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    from tests.test_mcp import _params, _payload

    a, b = repos
    params = _params(a, cwd=tmp_path)
    # a folder of the root's own repository, and one that is gone, beside b: neither may spoil the answer
    params.args = ["mcp", "--extra-root", str(b), "--extra-root", str(a / "src"), "--extra-root", str(tmp_path / "gone")]
    with open(tmp_path / "server.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                # a file of an extra root, before any search has opened it
                like = _payload(await session.call_tool("similar", {"path": str(b / "BankAccount.java"), "line": 30}))
                assert like["root"] == str(b) and like["results"], like
                found = _payload(await session.call_tool("search", {"query": "bank account withdraw money", "k": 4}))
                assert found["results"][0]["repo"] == str(b)
                assert found["results"][0]["path"] == "BankAccount.java"
                assert [r["root"] for r in found["repos"]] == [str(a), str(b)]
                assert f"not searched: {tmp_path / 'gone'}" in found["note"]
                found = _payload(await session.call_tool("search", {"query": "crc32 checksum of bytes", "k": 4}))
                assert (found["results"][0]["repo"], found["results"][0]["name"]) == (str(a), "crc32_checksum")
                where = [(r["repo"], r["path"], r["start_line"]) for r in found["results"]]
                assert len(where) == len(set(where)), where  # the root's folder adds no second copy
                # the notes a one-repository answer carries
                none = _payload(await session.call_tool("search", {"query": "crc32 checksum", "glob": "nope/**"}))
                assert none["results"] == [] and "no indexed file matches the glob 'nope/**'" in none["note"], none
                weak = _payload(await session.call_tool("search", {"query": "zebra giraffe savanna migration"}))
                assert not weak["good_match"] and "no good match" in weak["note"], weak
                # status, as search, covers every root: each repository's counts, and the extra root that is gone
                status = _payload(await session.call_tool("status", {}))
                assert [(r["root"], r["chunks"] > 0) for r in status["repos"]] == [(str(a), True), (str(b), True)]
                assert status["root"] == str(a) and str(tmp_path / "gone") in status["not_open"][0], status
