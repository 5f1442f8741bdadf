"""Which workspace folders the language server searches, and what it says about those it cannot or about bad
settings: as the CLI and the MCP server do (one library behind every door)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_needle
from tests.lsp.rawclient import RawClient

pytestmark = pytest.mark.slow


def _initialize(c: RawClient, *roots: Path) -> None:
    c.request("initialize", {
        "processId": None, "rootUri": roots[0].as_uri(),
        "workspaceFolders": [{"uri": r.as_uri(), "name": r.name} for r in roots],
        "capabilities": {"window": {"workDoneProgress": True}},
    }, timeout=30)
    c.notify("initialized", {})


def _git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_a_repository_inside_another_answers_once_for_its_files(tmp_path):
    outer = _git_repo(tmp_path / "outer")
    (outer / "main.py").write_text("def start_server(port):\n    \"\"\"Start the HTTP server on a port.\"\"\"\n"
                                   "    return port\n")
    inner = _git_repo(outer / "inner")
    (inner / "ring.py").write_text("def rotate_list(items, n):\n    \"\"\"Rotate a list left by n places.\"\"\"\n"
                                   "    return items[n:] + items[:n]\n")
    c = RawClient()
    try:
        _initialize(c, outer, inner)
        status = c.wait_ready()
        assert len(status["folders"]) == 2, status
        hits = c.command("needle.search", {"query": "rotate a list left", "k": 5})["result"]
        ring = [h for h in hits if h["uri"].endswith("/ring.py")]
        assert len(ring) == 1 and ring[0]["uri"] == (inner / "ring.py").as_uri(), hits
    finally:
        assert c.close() == 0


def test_a_folder_opened_through_a_symlink_gets_results_under_the_path_it_was_opened_by(tmp_path):
    """VS Code keeps a workspace folder's symlinked path (``~/code -> /data/code``) and names its files by it;
    results came back under the resolved path, which it opened as a second document beside the one being edited.
    A folder inside the repository, opened through the link, gets the link's spelling of the repository too."""
    repo = _git_repo(tmp_path / "repo")
    (repo / "ring.py").write_text("def rotate_list(items, n):\n    \"\"\"Rotate a list left by n places.\"\"\"\n"
                                  "    return items[n:] + items[:n]\n")
    (repo / "sub").mkdir()
    link = tmp_path / "link"
    link.symlink_to(repo)
    for opened in (link, link / "sub"):
        c = RawClient()
        try:
            _initialize(c, opened)
            c.wait_ready()
            hits = c.command("needle.search", {"query": "rotate a list left", "k": 5})["result"]
            assert [h["uri"] for h in hits] == [(link / "ring.py").as_uri()], hits
            symbols = c.request("workspace/symbol", {"query": "rotate_list"}, timeout=30)["result"]
            assert [s["location"]["uri"] for s in symbols] == [(link / "ring.py").as_uri()], symbols
        finally:
            assert c.close() == 0


def test_when_the_inner_repository_cannot_answer_the_outer_one_s_copies_still_do(tmp_path):
    outer = _git_repo(tmp_path / "outer")
    (outer / "main.py").write_text("def start_server(port):\n    return port\n")
    inner = _git_repo(outer / "inner")
    (inner / "ring.py").write_text("def rotate_list(items, n):\n    \"\"\"Rotate a list left by n places.\"\"\"\n"
                                   "    return items[n:] + items[:n]\n")
    assert run_needle("index", str(inner), "-q").returncode == 0
    with closing(sqlite3.connect(inner / ".needle" / "index.db")) as conn:  # an index of another schema
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
    c = RawClient()
    try:
        _initialize(c, outer, inner)
        c.wait_status(lambda s: all(f["state"] not in ("starting", "indexing") for f in s["folders"]))
        hits = c.command("needle.search", {"query": "rotate a list left", "k": 5})["result"]
        assert hits and hits[0]["uri"] == (outer / "inner" / "ring.py").as_uri(), hits
    finally:
        assert c.close() == 0


def test_the_home_folder_is_searched_once_its_index_was_built_on_purpose(tmp_path):
    home = shutil.copytree(FIXTURES / "minirepo", tmp_path / "home")
    env = {"HOME": str(home), "NEEDLE_CACHE_DIR": str(_user_cache())}
    built = run_needle("index", str(home), "-q", env=env)
    assert built.returncode == 0, built.stderr
    c = RawClient(env=env)
    try:
        c.initialize(home)
        assert c.wait_ready()["state"] == "ready"
        hits = c.command("needle.search", {"query": "read settings from a file", "k": 3})["result"]
        assert hits and all(h["uri"].startswith(home.as_uri()) for h in hits), hits
    finally:
        assert c.close() == 0


def test_a_folder_that_cannot_open_is_an_error_not_an_empty_answer(tmp_path):
    missing = tmp_path / "gone"
    c = RawClient()
    try:
        c.initialize(missing)
        c.wait_status(lambda s: s["state"] not in ("starting", "indexing"), timeout=30)
        err = c.command("needle.search", {"query": "parse a config file"})
        assert "error" in err and "does not exist" in err["error"]["message"], err
    finally:
        assert c.close() == 0


def _user_cache() -> Path:
    from codeneedle.indexer.numpy_bert import user_cache

    return user_cache()


def test_a_bad_setting_is_said_once_though_the_editor_sends_it_twice(tmp_path):
    """VS Code sends its settings as initializationOptions and again in answer to workspace/configuration: the
    same bad value is one warning, not two."""
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    c = RawClient(configuration={"maxFileBytes": 0})
    try:
        c.initialize(repo, options={"maxFileBytes": 0})
        c.wait_ready()
        shown = [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]
        assert sum("needle.maxFileBytes" in m for m in shown) == 1, shown
    finally:
        assert c.close() == 0


def test_each_log_line_reaches_the_editor_s_log_once(tmp_path):
    """A line sent as window/logMessage is left off stderr, which editors keep in the same log (VS Code's output
    channel showed every line twice); before the client is there, stderr still has it."""
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    with open(tmp_path / "stderr.log", "w+b") as err:
        c = RawClient(stderr=err)
        try:
            c.initialize(repo)
            c.wait_ready()
        finally:
            assert c.close() == 0
        err.seek(0)
        stderr = err.read().decode()
    logged = [n["params"]["message"] for n in c.notifications if n["method"] == "window/logMessage"]
    assert any(f"opening {repo}" in m for m in logged), logged
    assert f"opening {repo}" not in stderr, stderr


def test_search_in_folder_answers_from_the_folders_and_files_it_names_only(tmp_path):
    one = _git_repo(tmp_path / "one")
    (one / "net").mkdir()
    (one / "net" / "retry.py").write_text("def retry_call(fn, tries):\n    \"\"\"Retry a failing call.\"\"\"\n"
                                          "    return fn()\n")
    (one / "app.py").write_text("def retry_request(url):\n    \"\"\"Retry an HTTP request.\"\"\"\n    return url\n")
    (one / "empty").mkdir()
    two = _git_repo(one / "two")  # a workspace folder inside another
    (two / "again.py").write_text("def retry_job(job):\n    \"\"\"Retry a failed job.\"\"\"\n    return job\n")
    c = RawClient()
    try:
        _initialize(c, one, two)
        c.wait_ready()

        def uris(*within: Path) -> set[str]:
            answer = c.command("needle.search", {"query": "retry", "k": 20, "within": [p.as_uri() for p in within]})
            return {hit["uri"] for hit in answer["result"]}

        everywhere = {h["uri"] for h in c.command("needle.search", {"query": "retry", "k": 20})["result"]}
        assert everywhere >= {(one / "app.py").as_uri(), (two / "again.py").as_uri()}
        assert uris(one / "net") == {(one / "net" / "retry.py").as_uri()}
        assert uris(one / "app.py", two) == {(one / "app.py").as_uri(), (two / "again.py").as_uri()}
        assert uris(one) == everywhere  # the outer folder holds the inner one: all of both
        assert uris(two) == {(two / "again.py").as_uri()}
        outside = c.command("needle.search", {"query": "retry", "within": [(tmp_path / "elsewhere").as_uri()]})
        assert "outside the workspace folders" in outside["error"]["message"], outside
        assert uris(one / "empty") == set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                "no indexed file under empty" in n["params"]["message"] for n in c.notifications
                if n["method"] == "window/showMessage"):
            time.sleep(0.05)
        assert any("no indexed file under empty" in n["params"]["message"] for n in c.notifications
                   if n["method"] == "window/showMessage")
    finally:
        assert c.close() == 0


def test_a_hit_holding_the_chinese_words_leads_the_merge_of_two_folders(tmp_path):
    """As ``needle search --path A --path B`` merges: the folder whose code holds the query's Chinese words as typed
    answers first, though another folder's unrelated code has the higher cosine (0.21 against 0.16)."""
    orders, other = _git_repo(tmp_path / "orders"), _git_repo(tmp_path / "other")
    (orders / "totals.sql").write_text("-- 计算每个客户的订单总额\n"
                                       "SELECT customer_id, SUM(amount) FROM orders GROUP BY customer_id;\n")
    (other / "rocket.ps1").write_text("# Send a 🚀 rocket notification\nfunction Send-Rocket { Write-Host '🚀' }\n")
    c = RawClient()
    try:
        _initialize(c, other, orders)
        c.wait_ready()
        hits = c.command("needle.search", {"query": "订单总额", "k": 1})["result"]
        assert [(h["uri"], h["weak"]) for h in hits] == [((orders / "totals.sql").as_uri(), False)], hits
    finally:
        assert c.close() == 0
