"""What never enters an index: ignored, secret, binary and oversized files (counted, not read)."""

from __future__ import annotations

import pytest

from codeneedle.indexer.index import Index
from tests.conftest import copy_fixture

SECRET_FUNCTION = "def rotate_the_production_api_token():\n    return 'hunter2'\n"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    repo = copy_fixture("minirepo", tmp_path_factory.mktemp("rules") / "repo")
    (repo / ".gitignore").write_text("build/\n*.log\n")
    (repo / "build").mkdir()
    (repo / "build/generated.py").write_text(SECRET_FUNCTION)
    (repo / "debug.log").write_text(SECRET_FUNCTION)
    (repo / ".env").write_text("API_TOKEN=hunter2\n")
    (repo / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    (repo / "blob.py").write_bytes(b"def x():\n    pass\n\x00\x01\x02" * 10)
    (repo / "huge.py").write_text(SECRET_FUNCTION * 20_000)  # > 1 MiB
    (repo / ".hidden").mkdir()
    (repo / ".hidden/tool.py").write_text(SECRET_FUNCTION)
    (repo / ".needleignore").write_text("lib/\n")
    with Index.open(repo) as index:
        stats = index.update()
        yield index, stats


def test_only_tracked_looking_source_is_indexed(indexed):
    index, _ = indexed
    paths = {r.path for r in index.search("rotate the production api token", k=50)}
    assert not paths & {"build/generated.py", "debug.log", ".env", "server.pem", "blob.py", "huge.py",
                        ".hidden/tool.py"}


def test_needleignore_leaves_paths_out(indexed):
    index, _ = indexed
    store = index.reader()
    # lib/text/slug.rb would be indexed (a Ruby file) but for .needleignore's `lib/`: no file, no chunk of it.
    assert "lib/text/slug.rb" not in store.file_records()
    assert not [path for _, path, _, _ in store.chunk_filter_rows() if path.startswith("lib/")]
    assert ("lib", "needleignore") in store.conn.execute("SELECT path, reason FROM skipped").fetchall()
    assert "src/config/loader.py" in store.file_records()  # the rest of the tree is there


def test_skipped_files_are_counted_by_reason(indexed):
    index, stats = indexed
    skipped = index.status().skipped
    assert skipped.get("too_large") == 1
    assert skipped.get("secret", 0) >= 2
    # blob.py is seen as binary when read (the listing only stats): the update and the stored status both count it.
    assert stats.skipped.get("binary") == 1 and skipped.get("binary") == 1
    assert "blob.py" not in index.reader().file_records()
