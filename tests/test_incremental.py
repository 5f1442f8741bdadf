"""A second index run touches only what changed and never re-embeds unchanged code."""

from __future__ import annotations

import os
import shutil

import pytest

from codeneedle.indexer import pipeline
from codeneedle.indexer.index import Index
from tests.conftest import copy_fixture


@pytest.fixture
def repo(tmp_path):
    return copy_fixture("minirepo", tmp_path / "repo")


def test_nothing_changed_means_nothing_read_or_embedded(repo):
    with Index.open(repo) as index:
        first = index.update()
        second = index.update()
    assert first.chunks_embedded > 0
    assert (second.files_changed, second.chunks_embedded, second.chunks_added) == (0, 0, 0)
    assert second.files_unchanged == first.files_scanned


def test_nothing_changed_leaves_the_vector_file_alone_but_a_change_rewrites_it(repo):
    """A one-shot `needle search` refreshes first: rewriting an unchanged vector file cost it 35 ms."""
    with Index.open(repo) as index:
        index.update()
    vectors = repo / ".needle" / "vectors.usearch"
    written = vectors.stat().st_mtime_ns
    os.utime(vectors, ns=(written - 10**9, written - 10**9))  # a rewrite would move it forward again
    with Index.open(repo) as index:  # a new process: the file's generation is learnt by loading it
        index.update()
        assert vectors.stat().st_mtime_ns == written - 10**9
        path = repo / "src/config/loader.py"
        path.write_text(path.read_text() + "\n\ndef added():\n    return 1\n")
        index.update()
    assert vectors.stat().st_mtime_ns > written - 10**9
    with Index.open(repo) as index:
        assert index.search("added", k=1)[0].name == "added"


def test_touching_a_file_without_changing_it_re_embeds_nothing(repo):
    with Index.open(repo) as index:
        index.update()
        os.utime(repo / "web/format.ts", ns=(1, 1))
        stats = index.update()
    assert (stats.files_changed, stats.chunks_embedded) == (0, 0)


def test_editing_one_function_re_embeds_only_that_chunk(repo):
    with Index.open(repo) as index:
        index.update()
        path = repo / "src/config/loader.py"
        path.write_text(path.read_text().replace("values in override win", "values in override take priority"))
        stats = index.update()
        assert stats.files_changed == 1
        assert stats.chunks_embedded == 1
        hit = index.search("values in override take priority", k=1)[0]
    assert hit.name == "merge_settings"


def test_a_deleted_file_leaves_the_index(repo):
    with Index.open(repo) as index:
        index.update()
        (repo / "lib/text/slug.rb").unlink()
        stats = index.update()
        assert stats.files_removed == 1
        assert all(r.path != "lib/text/slug.rb" for r in index.search("make a url slug", k=10))
        assert index.status().files == 6


def test_a_moved_file_is_not_re_embedded(repo):
    with Index.open(repo) as index:
        index.update()
        shutil.move(repo / "web/format.ts", repo / "web/money.ts")
        stats = index.update()
        assert stats.chunks_embedded == 0
        assert index.search("format money amount as currency", k=1)[0].path == "web/money.ts"


def test_identical_code_in_two_files_is_embedded_once(repo):
    shutil.copy(repo / "src/hash/checksum.c", repo / "src/hash/checksum_copy.c")
    with Index.open(repo) as index:
        stats = index.update()
        assert stats.chunks_added == stats.chunks_embedded + 1


@pytest.mark.slow  # loads a second model and re-embeds
def test_opening_with_another_model_says_so_and_rebuilds(repo, tmp_path):
    from codeneedle.indexer.models import base_model_dir
    from codeneedle.indexer.settings import IndexSettings

    with Index.open(repo) as index:
        index.update()
    other = tmp_path / "other-model"
    other.symlink_to(base_model_dir(), target_is_directory=True)
    messages: list[str] = []
    with Index.open(repo, IndexSettings(model=str(other)), notify=messages.append) as index:
        stats = index.update()
        assert index.status().model.startswith("other-model@")
    assert any("rebuilding" in m for m in messages)
    assert not any("damaged" in m for m in messages), messages  # the old vectors are dropped, not "repaired"
    # Chunks do not depend on the model: every one is embedded again, no file is read again.
    assert stats.files_changed == 0 and stats.chunks_embedded > 0


def test_a_damaged_vector_file_is_rebuilt_from_sqlite_without_the_encoder(repo):
    with Index.open(repo) as index:
        index.update()
        vectors = index.index_dir / "vectors.usearch"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vectors.write_bytes(bytes(data))
    messages: list[str] = []
    with Index.open(repo, notify=messages.append) as index:
        assert index.search("crc32 checksum of bytes", k=1)[0].name == "crc32_checksum"
    assert any("rebuilt" in m for m in messages)


def _same_stat_rewrite(path, text: str) -> None:
    """Replace a file's bytes keeping its size and mtime: what only a read could tell apart."""
    st = path.stat()
    assert len(text.encode()) == st.st_size
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _settle(*paths) -> None:
    """Date files an hour back: written more than a clock tick ago, so an unchanged stat stands for their bytes."""
    for path in paths:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))


def test_a_file_rewritten_in_the_clock_tick_it_was_read_in_is_read_again(tmp_path):
    """Two writes in one tick of the file system's clock (1 s on HFS+, 2 s on FAT, a few ms on ext4 before Linux
    6.13) leave the same mtime; with the same size, the second version stayed out of the index until the file
    changed again. Read within a tick of its mtime, a file is read once more by the next update."""
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "calc.py"
    source.write_text("def scale_values(x):\n    return x * 2\n")
    with Index.open(repo) as index:
        index.update()
        _same_stat_rewrite(source, "def shift_values(x):\n    return x + 2\n")
        again = index.update()
        assert (again.files_changed, again.chunks_added) == (1, 1)
        assert [r.name for r in index.search("shift_values", k=1)] == ["shift_values"]
        assert "scale_values" not in {r.name for r in index.search("scale_values", k=5)}
        _settle(source)  # read more than a tick after its mtime: recorded, and stat alone decides from now on
        assert index.update().files_unchanged == 1
        reads = []
        original = pipeline.read_source
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pipeline, "read_source", lambda sf, *a: reads.append(sf.path) or original(sf, *a))
            assert index.update().files_unchanged == 1
        assert reads == []


def test_a_file_renamed_over_another_of_the_same_size_and_mtime_is_read(tmp_path):
    """Files a checkout (or a formatter) wrote in one tick of the clock share an mtime: 1 s on ext3 or a 128-byte
    inode ext4, a jiffy on ext4 before Linux 6.13. One renamed over another of the same size left size and mtime
    as recorded: on a 1-s ext4, `mv gamma.py delta.py` under `needle watch` kept delta's old function and lost
    gamma's from the index, for good. The rename sets the file's ctime anew, and the ctime is compared too."""
    repo = tmp_path / "repo"
    repo.mkdir()
    gamma, delta = repo / "gamma.py", repo / "delta.py"
    gamma.write_text("def gamma_compress_zlib(data):\n    return zlib.compress(data)\n")
    delta.write_text("def delta_decode_base64(text):\n    return b64.b64decode(text)\n")
    assert gamma.stat().st_size == delta.stat().st_size
    _settle(gamma)
    os.utime(delta, ns=(gamma.stat().st_atime_ns, gamma.stat().st_mtime_ns))  # one tick wrote both
    with Index.open(repo) as index:
        index.update()
        os.rename(gamma, delta)
        stats = index.update(paths=["gamma.py", "delta.py"])  # what the watcher hands over
        assert (stats.files_changed, stats.files_removed) == (1, 1)
        names = {r.name for r in index.search("compress or decode", k=5)}
        assert names == {"gamma_compress_zlib"}


def test_a_file_rewritten_and_dated_back_is_read(tmp_path):
    """``touch -d``, ``cp -p``, ``rsync -a`` and ``git restore-mtime`` give a file an old date after a rewrite:
    with the same size, the stat was the one recorded and the old bytes stayed indexed. Its ctime moved."""
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "calc.py"
    source.write_text("def scale_values(x):\n    return x * 2\n")
    _settle(source)
    with Index.open(repo) as index:
        index.update()
        _same_stat_rewrite(source, "def shift_values(x):\n    return x + 2\n")
        assert index.update().files_changed == 1
        assert {r.name for r in index.search("values", k=5)} == {"shift_values"}


def test_a_file_skipped_for_what_it_holds_is_read_again_only_once_it_changes(tmp_path):
    """A minified bundle or a generated module has no record, so every scan read it again (200 bundles: 0.27 s of
    each one-shot search). Its size and mtime are kept with the skip: unchanged, it stays skipped unread."""
    repo = tmp_path / "repo"
    (repo / "vendor").mkdir(parents=True)
    bundle = repo / "vendor/lib.js"
    bundle.write_text(";".join(f"var a{i}=function(b){{return b*{i}}}" for i in range(400)))
    generated = repo / "api_pb2.py"
    generated.write_text("# Generated by the protocol buffer compiler.  DO NOT EDIT!\nX = 1\n")
    (repo / "main.py").write_text("def greet():\n    return 'hi'\n")
    code = "function readable(b) { return b; }\n"

    def names(index) -> set[str]:
        return {r.name for r in index.search("readable function", k=20)}

    _settle(bundle, generated, repo / "main.py")
    with Index.open(repo) as index:
        first = index.update()
        assert (first.skipped["minified"], first.skipped["generated"]) == (1, 1)
        _same_stat_rewrite(bundle, code + " " * (bundle.stat().st_size - len(code)))
        again = index.update()
        assert (again.skipped["minified"], again.skipped["generated"], again.files_unchanged) == (1, 1, 1)
        assert "readable" not in names(index)  # not read: the old verdict stands
        os.utime(bundle, ns=(1, 1))  # a change the stat shows
        changed = index.update()
        assert "minified" not in changed.skipped and changed.files_changed == 1
        assert "readable" in names(index)
        # A generated file a .needleignore now re-includes is read, though it did not change.
        (repo / ".needleignore").write_text("!api_pb2.py\n")
        included = index.update()
        assert "generated" not in included.skipped
        assert index.store.file_records(["api_pb2.py"])


def test_a_generated_file_leaves_the_index_when_the_needleignore_line_that_brought_it_back_goes(tmp_path):
    """`!gen.py` in .needleignore brings a generated file into the index; taking the line out must take it out
    again, though the file did not change (it stayed indexed: unchanged files are not read, and only reading
    finds the "generated" header)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "gen.py").write_text("# Code generated by stubgen. DO NOT EDIT.\ndef generated_stub():\n    return 1\n")
    (repo / "main.py").write_text("def greet():\n    return 'hi'\n")
    needleignore = repo / ".needleignore"
    with Index.open(repo) as index:
        assert index.update().skipped["generated"] == 1
        needleignore.write_text("!gen.py\n")
        assert "generated" not in index.update().skipped
        assert index.store.file_records(["gen.py"])
        needleignore.write_text("# nothing re-included\n")
        dropped = index.update()
        assert (dropped.skipped["generated"], dropped.files_removed) == (1, 1)
        assert not index.store.file_records(["gen.py"])
        assert "generated_stub" not in {r.name for r in index.search("generated_stub", k=5)}
        needleignore.write_text("!gen.py\n")  # and back again: read, though still unchanged
        assert index.update().files_changed == 1 and index.store.file_records(["gen.py"])


def test_an_index_from_before_skips_kept_their_stat_is_brought_up_to_date(tmp_path):
    import sqlite3

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "bundle.js").write_text(";".join(f"var a{i}=function(b){{return b*{i}}}" for i in range(400)))
    (repo / "main.py").write_text("def greet():\n    return 'hi'\n")
    _settle(repo / "bundle.js", repo / "main.py")
    with Index.open(repo) as index:
        index.update()
    db = sqlite3.connect(repo / ".needle/index.db")
    db.execute("ALTER TABLE skipped DROP COLUMN size")
    db.execute("ALTER TABLE skipped DROP COLUMN mtime_ns")
    db.commit()
    db.close()
    with Index.open(repo) as index:
        assert index.update().skipped == {"minified": 1}
        assert index.store.content_skips() == {"bundle.js": ("minified", *_stat(repo / "bundle.js"))}


def test_an_index_from_before_files_kept_their_ctime_is_read_on_without_reading_them_again(tmp_path):
    """An index made before files kept their ctime: a reader reads it as it is, a writer adds the column, and an
    unchanged file recorded without one is judged by size and mtime (no file read again after an upgrade)."""
    import sqlite3

    from codeneedle.indexer import pipeline
    from codeneedle.indexer.store import Store

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text("def greet():\n    return 'hi'\n")
    _settle(repo / "main.py")
    with Index.open(repo) as index:
        index.update()
    db = sqlite3.connect(repo / ".needle/index.db")
    db.execute("ALTER TABLE files DROP COLUMN ctime_ns")
    db.commit()
    db.close()
    reader = Store(repo / ".needle/index.db", create=False)
    assert reader.file_records()["main.py"].ctime_ns is None
    reader.close()
    reads = []
    original = pipeline.read_source
    with Index.open(repo) as index, pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "read_source", lambda sf, *a: reads.append(sf.path) or original(sf, *a))
        assert index.update().files_unchanged == 1
        assert reads == []
        (repo / "main.py").write_text("def greet():\n    return 'hello'\n")
        index.update()
        assert index.store.file_records()["main.py"].ctime_ns == (repo / "main.py").stat().st_ctime_ns


def _stat(path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def test_a_first_build_stopped_while_reading_files_reads_only_the_rest_next_time(tmp_path, monkeypatch):
    # Ctrl-C (or kill -9) while a big repository's files were being read: the next run read every file again,
    # the ones already stored included, as if the chunker had changed.
    import threading

    from codeneedle.indexer import pipeline

    repo = copy_fixture("minirepo", tmp_path / "repo")
    for i in range(6):
        (repo / f"extra_{i}.py").write_text(f"def extra_{i}(x):\n    return x + {i}\n")
    monkeypatch.setattr(pipeline, "FILES_PER_BATCH", 1)
    stop = threading.Event()

    def cancel_after_three(p) -> None:
        if p.phase == "index" and p.files_done >= 3:
            stop.set()

    with Index.open(repo) as index:
        first = index.update(progress=cancel_after_three, cancel=stop)
        assert first.cancelled
        stored = len(index.reader().file_records(None))
        assert 3 <= stored < first.files_scanned
        second = index.update()
        assert second.files_changed == first.files_scanned - stored  # the rest only, not every file again
        assert index.completeness().state == "ready"


def test_vectors_of_code_no_longer_held_are_kept_up_to_a_bound_the_newest_first(tmp_path, monkeypatch):
    """Every edit left its old vector behind for ever (a long-lived index only grew). They are kept for when the
    code comes back (a revert, a branch switched back), as many as the index has chunks and at least
    NEEDLE_OLD_VECTORS; beyond that the oldest go."""
    import sqlite3

    from codeneedle.indexer import pipeline

    monkeypatch.setattr(pipeline, "OLD_VECTORS_KEPT", 3)
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "calc.py"

    def version(n: int) -> str:
        return f"def scale(x):\n    return x * {n}\n\n\ndef shift(x):\n    return x + 1\n"

    def vectors() -> int:
        with sqlite3.connect(repo / ".needle/index.db") as db:
            return db.execute("SELECT count(*) FROM embeddings").fetchone()[0]

    with Index.open(repo) as index:
        for n in range(1, 9):  # eight versions of scale(): seven left behind
            source.write_text(version(n))
            os.utime(source, ns=(n * 10**9, n * 10**9))
            index.update()
        assert vectors() <= 2 + 3 + 1  # the two live chunks, the bound, and what came since the last count
        source.write_text(version(7))  # the version before: its vector is among the kept
        os.utime(source, ns=(20 * 10**9, 20 * 10**9))
        assert index.update().chunks_embedded == 0
        source.write_text(version(1))  # the first version: long gone
        os.utime(source, ns=(21 * 10**9, 21 * 10**9))
        assert index.update().chunks_embedded == 1
