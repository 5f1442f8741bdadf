"""An index an older Needle made keeps working after an upgrade: re-chunked or re-embedded once, saying so, with
nothing of the old one left behind, and searched honestly while an older Needle still writes it.

The older index is this Needle's own with what an older one recorded written back over it (its chunker version, its
model's id and folder), as `needle index` at an earlier commit leaves it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from codeneedle.indexer.index import Index
from codeneedle.indexer.lock import WriterLock
from tests.conftest import copy_fixture, run_needle

# What needle-code-v2 (retired when v3 shipped) recorded; its folder went with the Needle that shipped it.
RETIRED_MODEL = "needle-code-v2@1c7fb55b7997+int8+t128"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = copy_fixture("minirepo", tmp_path / "repo")
    with Index.open(repo) as index:
        index.update()
    return repo


def _built_by_older_needle(repo: Path, *, chunker: str | None = None, model: str | None = None) -> None:
    """Rewrite what the index records as an older Needle would have: its chunker version, or its model (whose
    vectors, ANN file included, are then that model's)."""
    db = sqlite3.connect(repo / ".needle" / "index.db")
    with db:
        if chunker is not None:
            db.execute("UPDATE meta SET value = ? WHERE key = 'chunker_version'", (chunker,))
        if model is not None:
            name = model.partition("@")[0]
            for key, value in (("model_id", model), ("model_name", name), ("model_path", f"/gone/{name}")):
                db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
            db.execute("UPDATE embeddings SET model = ?", (model,))
    db.close()
    if model is not None:
        sidecar = repo / ".needle" / "vectors.usearch.json"
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "model_id": model}))


def _models(repo: Path) -> dict[str, int]:
    db = sqlite3.connect(repo / ".needle" / "index.db")
    try:
        return dict(db.execute("SELECT model, count(*) FROM embeddings GROUP BY model"))
    finally:
        db.close()


def test_an_older_chunkers_index_is_read_again_once_embedding_only_text_it_never_embedded(repo):
    with Index.open(repo) as index:
        files = index.status().files
        gone = index.store.conn.execute("SELECT hash FROM chunks WHERE name = 'crc32_checksum'").fetchone()[0]
    _built_by_older_needle(repo, chunker="6")
    db = sqlite3.connect(repo / ".needle" / "index.db")
    with db:  # the older chunker cut this function otherwise: its text now was never embedded here
        db.execute("DELETE FROM embeddings WHERE hash = ?", (gone,))
    db.close()
    messages: list[str] = []
    with Index.open(repo, notify=messages.append) as index:
        assert index.rebuild_due() is not None
        stats = index.update()
        assert index.rebuild_due() is None
        again = index.update()
        assert index.search("crc32 checksum of bytes", k=1)[0].name == "crc32_checksum"
    assert (stats.files_changed, stats.chunks_embedded) == (files, 1)
    assert (again.files_changed, again.chunks_embedded) == (0, 0)
    assert any("another version of Needle (chunker 6" in m for m in messages), messages


def test_an_index_of_another_models_vectors_is_searched_by_keywords_and_said_to_be_partial(repo):
    """What a new Needle sees while an older one's editor server still writes the index with its model (or with
    --no-refresh): not "ready" with keyword-only results, nor "damaged"."""
    _built_by_older_needle(repo, model=RETIRED_MODEL)
    messages: list[str] = []
    with Index.open(repo, notify=messages.append) as index:
        assert index.search("crc32 checksum of bytes", k=1)[0].name == "crc32_checksum"
        done = index.completeness()
    assert done.partial
    assert RETIRED_MODEL in done.message() and "keyword matches only" in done.message()
    assert not any("damaged" in m for m in messages), messages


def test_the_vectors_of_a_model_this_needle_can_no_longer_load_go_with_the_rebuild(repo):
    _built_by_older_needle(repo, model=RETIRED_MODEL)
    with Index.open(repo) as index:
        index.update()
        model = index.model_id
        assert index.completeness().state == "ready"
    assert list(_models(repo)) == [model]


def test_while_an_index_is_embedded_again_for_a_new_model_its_keyword_matches_still_answer(repo):
    _built_by_older_needle(repo, model=RETIRED_MODEL)
    stop = threading.Event()
    with Index.open(repo) as index:
        index.update(progress=lambda p: stop.set(), cancel=stop)  # stopped at once (Ctrl-C, a kill, a search meanwhile)
        found = index.search("crc32 checksum of bytes", k=1)
        done = index.completeness()
    assert [r.name for r in found] == ["crc32_checksum"]
    assert done.partial and done.chunks_total > 0


def test_chunks_a_needle_from_before_chunker_versions_wrote_after_a_downgrade_are_cut_again(repo):
    """Such a Needle leaves the chunker version ours recorded, writes its own cut without doc spans and embeds with
    its own model id; upgraded again, every file is read again, not only its chunks embedded again."""
    with Index.open(repo) as index:
        files = index.status().files
    _built_by_older_needle(repo, model=RETIRED_MODEL)
    db = sqlite3.connect(repo / ".needle" / "index.db")
    with db:
        db.execute("UPDATE chunks SET name = 'crc32', doc_start_line = NULL, doc_end_line = NULL, "
                   "doc_start_byte = NULL, doc_end_byte = NULL WHERE name = 'crc32_checksum'")
    db.close()
    with Index.open(repo) as index:
        stats = index.update()
        names = {c.name for c in index.store.chunks_in_file("src/hash/checksum.c")}
    assert stats.files_changed == files
    assert "crc32_checksum" in names and "crc32" not in names


@pytest.mark.slow  # the real command
def test_needle_status_says_an_upgraded_index_is_due_a_reread_until_it_is_read(repo):
    _built_by_older_needle(repo, chunker="6")
    due = run_needle("status", str(repo), env={"COLUMNS": "400"})  # the table's width: the line whole
    assert due.returncode == 0, due.stderr
    assert "chunker 6" in due.stdout and "reads every file again" in due.stdout
    shown = run_needle("status", str(repo), "--json")
    assert "another version of Needle (chunker 6" in json.loads(shown.stdout)["rebuild_due"]
    assert run_needle("index", str(repo), "-q").returncode == 0
    assert json.loads(run_needle("status", str(repo), "--json").stdout)["rebuild_due"] is None


@pytest.mark.slow  # the real command, twice
def test_needle_search_says_why_it_reads_an_upgraded_index_again_and_shows_it(repo):
    _built_by_older_needle(repo, chunker="6")
    first = run_needle("search", "crc32 checksum of bytes", str(repo), "-k", "1")
    assert first.returncode == 0, first.stderr
    assert "another version of Needle (chunker 6" in first.stderr
    assert "done" in first.stderr  # the progress bar's last state (off a terminal only that is written)
    assert "crc32_checksum" in first.stdout

    _built_by_older_needle(repo, model=RETIRED_MODEL)
    lock = WriterLock(repo / ".needle")  # an older Needle's editor server writes it
    lock.acquire()
    try:
        held = run_needle("search", "crc32 checksum of bytes", str(repo), "-k", "1", "--json")
    finally:
        lock.release()
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["partial"] is True
    assert "damaged" not in held.stderr


@pytest.mark.slow
def test_a_model_in_the_repository_left_unloaded_unasked_keeps_its_vectors_for_when_it_is_named_again(tmp_path):
    """An index built with ``--model`` naming a folder in the repository, searched without it: the model is not
    loaded unasked unless it reads as plain data, and the index goes to the default model. The model can still be
    loaded when named, so its vectors stay (they were deleted: naming it again embedded everything anew)."""
    import shutil

    from codeneedle.indexer.settings import IndexSettings

    repo = copy_fixture("minirepo", tmp_path / "repo")
    mine = repo / ".models" / "mine"  # hidden: not indexed itself
    shipped = Path(__file__).resolve().parents[1] / "codeneedle" / "models" / "needle-code-v3"
    shutil.copytree(shipped, mine, ignore=shutil.ignore_patterns("*.jsonl.gz", "train_state*", "training_*"))
    with Index.open(repo, IndexSettings(model=str(mine)), explicit=()) as index:
        index.update()
        own = index.model_id
    embedded = _models(repo)[own]
    config = json.loads((mine / "config.json").read_text())
    (mine / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))  # transformers' to load
    messages: list[str] = []
    with Index.open(repo, notify=messages.append) as index:
        index.update()
        assert index.model_id != own
    assert any("not loaded" in m for m in messages), messages
    assert _models(repo)[own] == embedded
    (mine / "config.json").write_text(json.dumps(config))
    with Index.open(repo, IndexSettings(model=str(mine)), explicit=()) as index:
        assert index.update().chunks_embedded == 0
