"""A first index embeds definitions before line windows: searches are for functions and classes, so on a big tree
they answer by meaning well before the README's windows and module-level code have their vectors."""

from __future__ import annotations

from codeneedle.indexer.chunks import WINDOW_KINDS
from codeneedle.indexer.index import Index


class RecordingEmbedder:
    """The index's own embedder, with a note of the order in which texts reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.texts: list[str] = []

    def embed(self, texts, on_done=None):
        self.texts.extend(texts)
        return self.inner.embed(texts, on_done=on_done)


def test_definitions_reach_the_encoder_before_windows(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    # Walked first, and short: by file order or by length alone, these windows would be embedded first.
    (repo / "AAA_NOTES.md").write_text("# Notes\n\nShort notes.\n")
    (repo / "aaa_setup.py").write_text("import os\nVERSION = '1.0'\nprint(VERSION)\n")
    (repo / "zz_geometry.py").write_text(
        "import math\n\nRADIUS = 2\n\n\n"
        "def circle_area(r):\n    \"\"\"Area of a circle.\"\"\"\n    return math.pi * r * r\n\n\n"
        "class Square:\n    def area(self, side):\n        return side * side\n")
    with Index.open(repo) as index:
        recorder = index.embedder = RecordingEmbedder(index.embedder)
        index.update()
        kinds = {}
        for row in index.store.chunks_in_file("zz_geometry.py") + index.store.chunks_in_file("aaa_setup.py") \
                + index.store.chunks_in_file("AAA_NOTES.md"):
            kinds[row.name, row.start_line] = row.kind
    order = [text.splitlines()[0] for text in recorder.texts]
    windows = [i for i, head in enumerate(order) if "AAA_NOTES" in head or "aaa_setup" in head]
    definitions = [i for i, head in enumerate(order) if "circle area" in head or "Square" in head]
    assert len(windows) >= 2 and len(definitions) >= 2, order
    assert max(definitions) < min(windows), order
    assert set(kinds.values()) >= {"function", "class"} and set(kinds.values()) & WINDOW_KINDS


def test_a_watchers_batch_of_changed_files_gives_definitions_their_vectors_first(tmp_path):
    # The watcher names the texts it added (``among``); a checkout of thousands of files spans many windows of
    # them, and each window must take every definition still pending before any line window.
    repo = tmp_path / "repo"
    repo.mkdir()
    for i in range(6):
        (repo / f"a{i}_notes.md").write_text(f"# Notes {i}\n\nShort notes number {i}.\n")
        (repo / f"z{i}_code.py").write_text(f"def helper_{i}(x):\n    return x + {i}\n")
    with Index.open(repo) as index:
        index.update()
        store = index.store
        rows = [r for p in sorted(store.file_records()) for r in store.chunks_in_file(p)]
        with store.transaction():
            store.conn.execute("DELETE FROM embeddings")
        windows_first = sorted({r.hash: r.kind in WINDOW_KINDS for r in rows}.items(), key=lambda kv: not kv[1])
        batch = store.pending_chunks(index.model_id, 6, among=[h for h, _ in windows_first])
    assert sum(1 for _, is_window in windows_first if is_window) >= 6
    assert [r.kind for r in batch] == ["function"] * 6
