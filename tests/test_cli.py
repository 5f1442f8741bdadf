"""The `needle` command as scripts and people use it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import NEEDLE, run_needle

pytestmark = pytest.mark.slow  # `needle` subprocesses


def test_batch_json_search_prints_one_object_per_query_in_order(minirepo, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("retry a call with exponential backoff\n\nmake a url slug from a title\n")
    proc = run_needle("search", "--path", str(minirepo), "--json", "--top-k", "10", "--queries", str(queries))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["query"] for o in lines] == ["retry a call with exponential backoff", "make a url slug from a title"]
    # each answer names the root its paths are relative to, so a script can open them from anywhere
    assert {o["root"] for o in lines} == {str(minirepo.resolve())}
    first = lines[0]["results"]
    assert len(first) <= 10
    assert first[0]["path"] == "src/net/retry.go"
    assert set(first[0]) == {"path", "start_line", "end_line", "name", "kind", "language", "score", "snippet"}
    assert isinstance(first[0]["start_line"], int) and isinstance(first[0]["score"], float)


def test_batch_queries_from_stdin(minirepo):
    for where in (("--path", str(minirepo)), (str(minirepo),)):  # the folder as an option, or named as usual
        proc = run_needle("search", *where, "--json", "--queries", "-", input="crc32 checksum of bytes\n")
        assert proc.returncode == 0, proc.stderr
        (obj,) = [json.loads(line) for line in proc.stdout.splitlines()]
        assert obj["results"][0]["name"] == "crc32_checksum"


def test_people_get_grep_like_lines_with_paths_that_open_from_where_they_are(minirepo):
    query = ("-k", "2", "format money amount as currency")
    # Relative to the current folder below it, absolute elsewhere: either way the path opens from here.
    for cwd, path, shown in ((minirepo, str(minirepo), "web/format.ts"), (minirepo / "web", None, "format.ts"),
                             (minirepo.parent, "minirepo", "minirepo/web/format.ts"),
                             (minirepo / "src", "../web", str(minirepo / "web" / "format.ts"))):
        proc = run_needle("search", *query, *([path] if path else []), cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[0].startswith(f"{shown}:2: formatCurrency"), (cwd, path)
    gone = minirepo.parent / "gone"  # a current folder deleted under the shell: absolute paths
    gone.mkdir()
    proc = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$0" "$@"', str(NEEDLE), "search",
                           *query, str(minirepo)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{minirepo / 'web' / 'format.ts'}:2:")


def test_status_reports_the_index_as_json(minirepo):
    run_needle("index", "--quiet", str(minirepo))
    proc = run_needle("status", str(minirepo), "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["files"] == 7 and status["chunks"] > 0
    assert status["index_dir"].endswith(".needle")
    assert status["reranker"].endswith("needle-rerank-v1") and status["rerank_depth"] == 10  # the shipped one
    off = json.loads(run_needle("status", str(minirepo), "--json", env={"NEEDLE_RERANKER": "off"}).stdout)
    assert off["reranker"] is None
    assert "re-ranker" in run_needle("status", str(minirepo)).stdout


def test_a_missing_path_is_one_clear_line_and_a_failure(tmp_path):
    proc = run_needle("search", "--path", str(tmp_path / "nope"), "anything")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"needle: error: path does not exist: {tmp_path / 'nope'}"]
    assert "Traceback" not in proc.stderr


def test_status_of_an_unindexed_folder_says_how_to_index_it(tmp_path):
    proc = run_needle("status", str(tmp_path))
    assert proc.returncode == 1
    assert "needle index" in proc.stderr and "Traceback" not in proc.stderr


def test_a_second_writer_is_refused_clearly(minirepo):
    from codeneedle.indexer.index import Index

    with Index.open(minirepo) as holder, holder.writing():
        proc = run_needle("index", "--quiet", str(minirepo))
        assert proc.returncode == 1
        assert "being written by another needle process" in proc.stderr
        # Readers keep reading while the writer works.
        proc = run_needle("search", "--path", str(minirepo), "--json", "crc32 checksum of bytes")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["results"][0]["name"] == "crc32_checksum"


def test_a_reader_that_stops_early_is_no_failure(minirepo):
    # `needle search ... | head -1` under `set -o pipefail`: the closed pipe ended the command with status 1.
    run_needle("index", "--quiet", str(minirepo))
    for args in (("search", "-k", "20", "format money amount as currency", str(minirepo)),
                 ("search", "--json", "format money amount as currency", str(minirepo)),
                 ("status", str(minirepo))):
        proc = subprocess.Popen([str(NEEDLE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before anything is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == 0, (args, err)
        assert "Traceback" not in err and "Exception ignored" not in err, err
