"""Where a chunk's doc comment sits survives the store: the embedding step rebuilds chunks from rows and must
see the same leading doc the chunker saw; an index made before spans existed gains the columns in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.embedding import chunk_of
from codeneedle.indexer.encoder import embed_text
from codeneedle.indexer.store import FileRecord, Store

SOURCE = b"""// Read the whole configuration file and parse it.
func Load(path string) (*Config, error) {
\treturn parse(path)
}

func Save(c *Config) error {
\t// Write it back, atomically.
\treturn write(c)
}
"""
PYTHON = b'def area(r):\n    """Area of a circle of radius r."""\n    return 3.14159 * r * r\n'


def store_with(tmp_path: Path, path: str, data: bytes, language: str) -> tuple[Store, list]:
    store = Store(tmp_path / "index.db")
    chunks = chunk_source(path, data, language)
    with store.transaction():
        store.replace_files([], [FileRecord(path, len(data), 0, "h", language)], {path: chunks})
    return store, chunks


def test_pending_rows_embed_the_same_text_as_fresh_chunks(tmp_path: Path) -> None:
    store, chunks = store_with(tmp_path, "conf.go", SOURCE, "go")
    rows = {r.name: r for r in store.pending_chunks("m", 100)}
    fresh = {c.name: c for c in chunks}
    assert fresh["Load"].leading_doc == "Read the whole configuration file and parse it."
    for name in ("Load", "Save"):
        assert chunk_of(rows[name]) == fresh[name]
        assert embed_text(chunk_of(rows[name])) == embed_text(fresh[name])
    assert embed_text(fresh["Load"]).splitlines()[1] == "Read the whole configuration file and parse it."
    assert fresh["Save"].doc == "" and not fresh["Save"].has_doc_span  # a comment in the body is no doc
    store.close()


def test_a_docstring_stays_in_the_text_only(tmp_path: Path) -> None:
    store, (chunk,) = store_with(tmp_path, "geo.py", PYTHON, "python")
    assert chunk.doc == "Area of a circle of radius r." and chunk.doc_inside and chunk.leading_doc == ""
    (row,) = store.pending_chunks("m", 10)
    assert embed_text(chunk_of(row)).count("Area of a circle") == 1
    store.close()


def test_an_index_from_before_doc_spans_gains_the_columns_in_place(tmp_path: Path) -> None:
    store, _ = store_with(tmp_path, "conf.go", SOURCE, "go")
    store.close()
    conn = sqlite3.connect(tmp_path / "index.db")
    for column in ("doc_start_line", "doc_end_line", "doc_start_byte", "doc_end_byte", "cell", "cell_start_line",
                   "cell_end_line"):
        conn.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
    conn.commit()
    conn.close()
    reader = Store(tmp_path / "index.db", create=False)  # a reader reads the old shape as it is
    assert sorted(r.name for r in reader.chunks_in_file("conf.go")) == ["Load", "Save"]
    reader.close()
    writer = Store(tmp_path / "index.db")
    columns = {r[1] for r in writer.conn.execute("PRAGMA table_info(chunks)")}
    assert {"doc_start_line", "doc_end_line", "doc_start_byte", "doc_end_byte", "cell"} <= columns
    rows = writer.pending_chunks("m", 10)
    assert len(rows) == 2 and all(r.doc_end_byte == 0 for r in rows)  # old rows: no span until re-chunked
    assert all(r.cell == 0 for r in [*rows, *writer.chunks_in_file("conf.go")])  # NULL: in no notebook cell
    writer.close()
