"""Indexing a hostile tree completes, counts every skipped file by reason and reads nothing outside the root."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.index import Index
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES
from tests.badinput.make_corpus import OpenRecorder, make_corpus, restore_permissions
from tests.conftest import run_needle


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    manifest = make_corpus(tmp_path_factory.mktemp("badinput"))
    yield manifest
    restore_permissions(manifest)


@pytest.fixture(scope="module")
def indexed(corpus):
    index = Index.open(corpus["root"])
    # Load the model and every grammar first: they live outside the root by design.
    index.encoder  # noqa: B018
    for lang in SUPPORTED_LANGUAGES:
        chunk_source("x", b"x", lang)
    with OpenRecorder.recording() as recorder:
        stats = index.update()
    yield index, stats, recorder
    index.close()


def test_indexing_the_corpus_completes_and_finds_the_good_file(indexed):
    index, stats, _ = indexed
    assert not stats.cancelled
    assert index.search("def ok return 1", k=5)[0].path == "ok.py"


def test_nothing_outside_the_root_is_read(indexed, corpus):
    _, _, recorder = indexed
    outside = corpus["outside"]
    assert [p for p in recorder.paths if p == outside or p.startswith(outside + "/")] == []


def test_every_skipped_file_is_counted_by_reason_in_status(indexed, corpus):
    index, _, _ = indexed
    expected = Counter(e["walk"] for e in corpus["entries"].values() if e["walk"])
    expected.update(e["read"] for e in corpus["entries"].values() if not e["walk"] and e.get("read"))
    skipped = index.status().skipped
    for reason, count in expected.items():
        assert skipped.get(reason, 0) >= count, (reason, skipped)


def test_status_on_the_command_line_shows_the_reasons(indexed, corpus):
    proc = run_needle("status", "--json", corpus["root"])
    assert proc.returncode == 0, proc.stderr
    skipped = json.loads(proc.stdout)["skipped"]
    assert {"too_large", "binary", "symlink_outside", "symlink_loop", "secret"} <= set(skipped)


def test_odd_encodings_and_deep_nesting_are_indexed_not_dropped(indexed):
    index, _, _ = indexed
    store = index.reader()
    for path in ("latin1.py", "mixed_encodings.py", "invalid_utf8.rs", "deep_brackets.py", "deep_braces.js",
                 "nonsense.py", "notes.unknownext"):
        assert store.file_record(path) is not None, path
        assert store.chunks_in_file(path), path
