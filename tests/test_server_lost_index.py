"""`.needle/` deleted or truncated while the language server runs: the server notices, says so and rebuilds;
it never answers `[]` from a ghost, never writes into a deleted or truncated file, and no CLI builds a second
index beside it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_needle
from tests.lsp.rawclient import RawClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _shown(c: RawClient) -> list[str]:
    return [n["params"]["message"] for n in c.notifications if n["method"] == "window/showMessage"]


def _search_until_found(c: RawClient, query: str, name: str, timeout: float = 240) -> list[dict]:
    """The hits once ``name`` comes first, not marked partial (the rebuild and the rescan after a loss run in the
    background, lexical first, vectors behind), or the last hits when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        answer = c.command("needle.search", {"query": query})
        hits = answer.get("result") or []
        if (hits and hits[0]["name"] == name and not hits[0].get("partial")) or time.monotonic() > deadline:
            return hits
        time.sleep(0.5)


def _reported(c: RawClient, answer: dict, words: str) -> bool:
    """The search says ``words`` in its error, or the server had already noticed (its watcher or an update saw the
    loss first) and said so in a message before answering: which comes first is a matter of timing."""
    return ("error" in answer and words in answer["error"]["message"]) or any(words in m for m in _shown(c))


def test_a_deleted_or_truncated_index_is_detected_reported_and_rebuilt(tmp_path: Path) -> None:
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    index_dir = repo / ".needle"
    c = RawClient()
    try:
        c.initialize(repo)
        assert c.wait_ready()["state"] == "ready"
        assert c.command("needle.search", {"query": "crc32 checksum"})["result"][0]["name"] == "crc32_checksum"

        # 1. The whole folder goes (rm -rf .needle, a `git clean -fdx`).
        for _ in range(100):  # like `rm -rf`: the server may be saving into it at that very moment
            shutil.rmtree(index_dir, ignore_errors=True)
            if not index_dir.exists():
                break
            time.sleep(0.05)
        answer = c.command("needle.search", {"query": "crc32 checksum"})
        assert _reported(c, answer, "was deleted"), (answer, _shown(c))
        found = _search_until_found(c, "crc32 checksum", "crc32_checksum")
        assert found and found[0]["name"] == "crc32_checksum"
        assert any("was deleted" in m for m in _shown(c)), _shown(c)
        assert (index_dir / "index.db").exists() and (index_dir / ".gitignore").read_text().endswith("*\n")
        # The rebuilt index has one writer, the server: a CLI is told so instead of building a second index.
        proc = run_needle("index", str(repo))
        assert proc.returncode == 1 and "another needle process" in proc.stderr, proc.stderr

        # 2. The database is truncated in place.
        db = index_dir / "index.db"
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        with open(db, "r+b") as fh:
            fh.truncate(size // 3)
        answer = c.command("needle.search", {"query": "retry with backoff"})
        assert _reported(c, answer, "truncated"), (answer, _shown(c))
        found = _search_until_found(c, "crc32 checksum", "crc32_checksum")
        assert found and found[0]["name"] == "crc32_checksum"
        assert list(index_dir.glob("index.db.corrupt-*")), "the damaged file is kept aside"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status = c.command("needle.status")["result"]
        (folder,) = status["folders"]
        assert folder["state"] == "ready" and folder["files"] >= 7, folder

        # 3. Another process removes the write-ahead log and its shared-memory index under the server's open
        #    connections (SQLite's last connection to close does that): they would write into a deleted log.
        for name in ("index.db-wal", "index.db-shm"):
            (index_dir / name).unlink()
        (repo / "src/config/units.py").write_text(
            'def miles_to_kilometres(miles):\n    """Convert a distance in miles to kilometres."""\n'
            "    return miles * 1.609344\n")
        answer = c.command("needle.search", {"query": "retry with backoff"})
        assert _reported(c, answer, "write-ahead log"), (answer, _shown(c))
        found = _search_until_found(c, "convert a distance from miles to kilometres", "miles_to_kilometres")
        assert found and found[0]["name"] == "miles_to_kilometres"
    finally:
        assert c.close() == 0
    # What the server wrote after opening its connections again is in the database file.
    proc = run_needle("search", "--path", str(repo), "--json", "--no-refresh", "miles to kilometres")
    assert proc.returncode == 0 and json.loads(proc.stdout)["results"][0]["name"] == "miles_to_kilometres"
