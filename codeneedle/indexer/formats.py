"""File formats that hold code or sections inside them: Vue, Svelte, Astro and HTML (``<script>`` blocks), Jupyter
notebooks (code cells), Markdown and reStructuredText (sections under headings), Quarto and R Markdown (code chunks
and sections).

A format is a ``language`` name with no grammar of its own: the file's record and its non-code chunks carry it
(``vue``, ``jupyter``, ``markdown``), the code inside carries the code's language (``typescript``, ``python``). A
search filtered by a format's name selects its files by extension, whatever their chunks' languages
(:func:`format_of`): ``--lang vue`` finds a component's methods, ``--lang typescript`` the TypeScript of
``<script lang="ts">`` along with that of ``.ts`` files.

This module is the leaf the format modules share; ``documents.py`` picks the module for a format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Protocol

from codeneedle.indexer.chunks import Chunk

# Extension (lower case, with the dot) -> format name.
FORMAT_EXTENSIONS: dict[str, str] = {
    ".vue": "vue",
    ".svelte": "svelte",
    ".astro": "astro",
    ".html": "html",
    ".htm": "html",
    ".ipynb": "jupyter",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "restructuredtext",
    ".qmd": "quarto",
    ".rmd": "rmarkdown",
}
FORMATS: tuple[str, ...] = tuple(dict.fromkeys(FORMAT_EXTENSIONS.values()))
# What people type for them after --lang.
FORMAT_ALIASES: dict[str, str] = {"ipynb": "jupyter", "notebook": "jupyter", "notebooks": "jupyter",
                                  "md": "markdown", "mdx": "markdown", "rst": "restructuredtext", "htm": "html",
                                  "qmd": "quarto", "rmd": "rmarkdown"}


# A notebook's outputs (plots as base64, tables) are most of its bytes and none of what is indexed: it may be this
# many times the size cap, and its long output lines do not make it "minified".
NOTEBOOK_SIZE_FACTOR = 8


def format_of(path: str | PurePath) -> str | None:
    """The format a file is in by its extension (case-insensitive), or None."""
    return FORMAT_EXTENSIONS.get(PurePath(path).suffix.lower())


def size_cap(path: str | PurePath, max_file_bytes: int) -> int:
    """The most bytes ``path`` may have to be indexed under the cap ``max_file_bytes``."""
    return max_file_bytes * NOTEBOOK_SIZE_FACTOR if format_of(path) == "jupyter" else max_file_bytes


def screened_for_minified(path: str | PurePath) -> bool:
    """Whether ``path`` is screened for minified code: not a notebook, whose outputs are long lines of base64."""
    return format_of(path) != "jupyter"


class Cutter(Protocol):
    """What a format module asks of the chunker (``chunker.chunk_source`` and its line windows)."""

    def code(self, path: str, data: bytes, language: str) -> list[Chunk]:
        """Chunks of ``data`` read as ``language`` (positions within ``data``)."""
        ...

    def windows(self, path: str, data: bytes, language: str, spans: Sequence[tuple[int, int]],
                kind: str) -> list[Chunk]:
        """Line windows of ``kind`` over each ``[start, end)`` byte span of ``data``."""
        ...

