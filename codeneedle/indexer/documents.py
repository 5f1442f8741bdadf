"""Which module cuts a file of a format (``formats.py``): components and pages, notebooks, documents, literate
documents (Quarto, R Markdown)."""

from __future__ import annotations

from codeneedle.indexer.chunks import TEXT, Chunk
from codeneedle.indexer.embedded_scripts import HOSTS, chunk_host
from codeneedle.indexer.formats import Cutter
from codeneedle.indexer.literate import LITERATE, chunk_literate
from codeneedle.indexer.markdown_sections import chunk_sections
from codeneedle.indexer.notebooks import chunk_notebook


def chunk_document(path: str, data: bytes, fmt: str, cutter: Cutter) -> list[Chunk]:
    """The chunks of a file in format ``fmt``; one that is not what its name says (a notebook that is no JSON) is
    cut into text windows as any other text file."""
    if fmt in HOSTS:
        return chunk_host(path, data, fmt, cutter)
    if fmt == "jupyter":
        notebook = chunk_notebook(path, data, fmt, cutter)
        if notebook is not None:
            return notebook
        return cutter.windows(path, data, TEXT, [(0, len(data))], TEXT)
    if fmt in LITERATE:
        return chunk_literate(path, data, fmt, cutter)
    if fmt in ("markdown", "restructuredtext"):
        return chunk_sections(path, data, fmt, cutter)
    return cutter.windows(path, data, fmt, [(0, len(data))], TEXT)
