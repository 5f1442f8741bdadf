"""The walker on the bad-input corpus of issue 7: every path gets its expected verdict, nothing
outside the root is opened, and nothing hangs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codeneedle.indexer.walker import read_source, walk
from tests.badinput.make_corpus import OUTSIDE_SENTINEL, OpenRecorder, make_corpus, restore_permissions


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    manifest = make_corpus(tmp_path_factory.mktemp("badinput"))
    yield manifest
    restore_permissions(manifest)


@pytest.fixture(scope="module")
def walked(corpus: dict[str, Any]) -> dict[str, Any]:
    with OpenRecorder.recording() as rec:
        started = time.perf_counter()
        result = walk(corpus["root"])
        walk_seconds = time.perf_counter() - started
        reads = {sf.path: read_source(sf) for sf in result.files}
    return {"result": result, "reads": reads, "opened": rec, "walk_seconds": walk_seconds}


def test_every_corpus_path_gets_its_expected_walk_verdict(corpus: dict[str, Any], walked: dict[str, Any]) -> None:
    result = walked["result"]
    verdicts: dict[str, str | None] = dict(result.skipped_paths)
    verdicts.update({sf.path: None for sf in result.files})
    expected = {path: entry["walk"] for path, entry in corpus["entries"].items()}
    assert {path: verdicts.get(path, "NOT SEEN") for path in expected} == expected


def test_every_indexed_corpus_file_reads_as_expected(corpus: dict[str, Any], walked: dict[str, Any]) -> None:
    reads = walked["reads"]
    expected = {path: e["read"] for path, e in corpus["entries"].items() if e["walk"] is None}
    got = {path: (None if isinstance(reads[path], bytes) else reads[path]) for path in expected}
    assert got == expected


def test_nothing_outside_the_root_is_opened_or_listed(corpus: dict[str, Any], walked: dict[str, Any]) -> None:
    assert walked["opened"].outside(corpus["root"]) == []
    assert not any(isinstance(data, bytes) and OUTSIDE_SENTINEL in data for data in walked["reads"].values())
    real_root = os.path.realpath(corpus["root"])
    assert all(os.fspath(sf.abs_path).startswith(real_root + "/") for sf in walked["result"].files)


def test_every_skip_is_counted_by_reason(walked: dict[str, Any]) -> None:
    result = walked["result"]
    assert result.skipped_total == len(result.skipped_paths)  # the corpus stays under the cap
    for reason in ("too_large", "symlink_loop", "symlink_outside", "special", "bad_name", "secret"):
        assert result.skipped.get(reason, 0) > 0, reason


def test_the_hostile_corpus_is_walked_quickly(walked: dict[str, Any]) -> None:
    # no file is read, so the 50 MB file costs one stat; a hang or a full read would blow this up
    assert walked["walk_seconds"] < 5


def test_indexing_twice_gives_the_same_answer(corpus: dict[str, Any], walked: dict[str, Any]) -> None:
    again = walk(corpus["root"])
    assert again.files == walked["result"].files
    assert again.skipped == walked["result"].skipped

