"""Plain data passed between the indexing stages: files -> chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Bump when the chunker would cut the same file differently: indexes made before re-chunk once (pipeline.py).
# 2: object-literal and constructor (`this.x = function`) methods, TS declarations as named chunks.
CHUNKER_VERSION = "2"

# Chunk kinds, from most to least structured.
FUNCTION = "function"
METHOD = "method"
CLASS = "class"
BLOCK = "block"  # module-level code that belongs to no function or class, in line windows
TEXT = "text"  # line windows of a file no grammar covers


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable unit of a file.

    ``path`` is POSIX-style and relative to the indexed root; lines are 1-based and inclusive;
    ``start_byte``/``end_byte`` index the file's raw bytes (half-open).
    """

    path: str
    language: str
    kind: str
    name: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    text: str
    doc: str = ""

    @property
    def content_hash(self) -> str:
        """Hash of what identifies the chunk's meaning independent of where it lives."""
        return content_hash(self.kind, self.name, self.text, self.doc)

    @property
    def leading_doc(self) -> str:
        """The doc comment when it sits outside ``text`` (a comment above the definition), else ""."""
        lines = self.doc.strip().splitlines()
        return self.doc.strip() if lines and lines[0].strip() not in self.text else ""


def content_hash(kind: str, name: str, text: str, doc: str = "") -> str:
    """Stable hash of a chunk's kind, name, text and doc comment (its path and position are left out on
    purpose, so a moved or shifted function keeps its cached embedding)."""
    h = hashlib.blake2b(digest_size=16)
    for part in (kind, name, text, doc):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()
