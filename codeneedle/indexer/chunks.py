"""Plain data passed between the indexing stages: files -> chunks."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

# Bump when the chunker would cut the same file differently: indexes made before re-chunk once (pipeline.py).
# 2: object-literal and constructor (`this.x = function`) methods, TS declarations as named chunks.
# 3: chunks record where their doc comment sits (doc_* spans); content hashes are unchanged, so nothing re-embeds.
# 4: blocks start past the `,` / `};` left by carved-out object-literal members; an unclosed bracket no longer turns
#    the rest of its file into blocks (chunker.recover).
# 5: Python files in a declared legacy encoding (PEP 263) are read in it (source_encoding.py).
# 6: C++ headers named .h are read as C++; doc comments with "/*" inside; TS overload docs reach the implementation;
#    CRLF docstrings; `module.exports = function name()` named; typedef structs one chunk.
# 7: a tool's annotation (`/*#__PURE__*/`) between a doc comment and its definition is passed over.
# 8: named chunks for Rust macro_rules! and type aliases, TypeScript type aliases, every Go named type (grouped
#    specs apart), C/C++ prototypes and function-like macros; JS properties defined by a call (`defineGetter(req,
#    'ip', fn)`, `Object.defineProperty(o, 'x', {get})`) as o.x with their doc.
# 9: C#, PHP, Kotlin, Swift, Scala, Lua and Bash parsed with tree-sitter (named chunks instead of text windows);
#    Kotlin/C#/Swift members' expression bodies and property accessors left out of their class's chunk.
# 10: define-style calls only for JS properties (not callbacks or `exports.__esModule`), no C function-pointer
#     variables as prototypes, Rust associated types left in their impl.
# 11: C# indexers, operators, conversions, finalizers and events with code, Swift subscripts and deinit, Lua functions
#     in table literals as methods, Swift macros as functions; C# explicit interface implementations named through
#     the interface; Swift symbol operators starting with `<` named; Kotlin companion members named
#     through the companion (Outer.Companion.of), object-expression and enum-entry members through their property or
#     entry; each prototype of a C/C++ declaration with several (`int a(void), b(int);`) a chunk of its own; C/C++
#     typedefs of function types (`typedef int (*cmp_fn)(...)`) named; SQLite-style `** ` comment lines cleaned.
# 12: Dart, Elixir, Objective-C (.m, .mm, Objective-C .h headers), Zig, Haskell, Julia, OCaml (.ml, .mli) and Perl
#     parsed with tree-sitter.
# 13: code inside other formats (formats.py): Vue/Svelte/Astro/HTML <script> blocks as JavaScript/TypeScript,
#     notebook cells, Markdown/reST sections named after their headings.
# 14: React Native's method macros (RCT_EXPORT_METHOD, RCT_REMAP_METHOD, RCT_CUSTOM_VIEW_PROPERTY) read as the methods
#     they declare: the methods after the first were lost.
# 15: Markdown/reST: no heading inside an HTML comment; labels, anchors and badges above a heading in its section;
#     a badge's words in a heading's name; nbformat 3 notebooks read by their cells, not as text.
# 16: Quarto (.qmd) and R Markdown (.Rmd): executable chunks in a parsed language (```{python}) chunked as that
#     language, the prose in sections named after their headings (literate.py); Haskell `{- | -}` block comments
#     and OCaml `(** *)` docs closing their definition's own line attached as docs; Prolog `.pl` files as text;
#     a Perl sub's POD doc from the block's last =item/=head2 on (not the module's NAME and DESCRIPTION above it).
# 17: a notebook's chunks record their cell (its number, and their lines inside it), so an editor opens the cell.
# 18: SQL, Terraform/HCL, Solidity, F# (.fs, .fsi), PowerShell, MATLAB (.m that is not Objective-C), CUDA and Fortran
#     parsed with tree-sitter (text windows before); a comment banner's rule line ends the doc above a definition;
#     Quarto chunk options (#|) blanked, indented knitr chunks read, sql and fortran chunks of Quarto/R Markdown parsed.
# 19: keyword search reads Chinese, Japanese and Korean text by pairs of characters (cjk.py): every chunk's FTS row
#     is written again (the vectors stay); UTF-16 and UTF-32 files with a byte-order mark are text (skipped as binary
#     before: every file is read again, so those a scan had left skipped are taken in).
CHUNKER_VERSION = "19"

# Chunk kinds, from most to least structured.
FUNCTION = "function"
METHOD = "method"
CLASS = "class"
BLOCK = "block"  # module-level code that belongs to no function or class, in line windows
TEXT = "text"  # line windows of a file no grammar covers
WINDOW_KINDS = frozenset((BLOCK, TEXT))

# The JavaScript family: `this`, constructor functions and prototypes work alike in all three.
JS_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable unit of a file.

    ``path`` is POSIX-style and relative to the indexed root; lines are 1-based and inclusive;
    ``start_byte``/``end_byte`` index the file's raw bytes (half-open).
    ``doc`` is the cleaned doc comment; ``doc_start_line``..``doc_end_line`` and ``doc_start_byte``/``doc_end_byte``
    say where it sits in the same file (lines 0 and an empty byte range when there is none): inside the chunk's
    range for a Python docstring, above it for a comment. ``cell`` is the 1-based number of the notebook cell the
    chunk is in (0 outside notebooks), ``cell_start_line``..``cell_end_line`` its lines in that cell's source (1-based,
    inclusive). Where a chunk sits is left out of :attr:`content_hash`.
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
    doc_start_line: int = 0
    doc_end_line: int = 0
    doc_start_byte: int = 0
    doc_end_byte: int = 0
    cell: int = 0
    cell_start_line: int = 0
    cell_end_line: int = 0

    @property
    def content_hash(self) -> str:
        """Hash of what identifies the chunk's meaning independent of where it lives."""
        return content_hash(self.kind, self.name, self.text, self.doc)

    @property
    def has_doc_span(self) -> bool:
        """Whether the chunker recorded where the doc comment is."""
        return self.doc_end_byte > self.doc_start_byte

    @property
    def doc_inside(self) -> bool:
        """The doc comment lies within the chunk's own range (a Python docstring), so ``text`` holds it."""
        return self.has_doc_span and self.start_byte <= self.doc_start_byte and self.doc_end_byte <= self.end_byte

    @property
    def leading_doc(self) -> str:
        """The doc comment when it sits outside ``text`` (a comment above the definition), else ""."""
        return self.doc.strip() if self.has_doc_span and not self.doc_inside else ""


def content_hash(kind: str, name: str, text: str, doc: str = "") -> str:
    """Stable hash of a chunk's kind, name, text and doc comment (its path and position are left out on
    purpose, so a moved or shifted function keeps its cached embedding)."""
    h = hashlib.blake2b(digest_size=16)
    for part in (kind, name, text, doc):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def shifted(chunk: Chunk, shift: int, lines: int) -> Chunk:
    """``chunk`` of a piece of a file moved onto the whole file: ``shift`` bytes and ``lines`` lines further on."""
    moved = {"start_byte": chunk.start_byte + shift, "end_byte": chunk.end_byte + shift,
             "start_line": chunk.start_line + lines, "end_line": chunk.end_line + lines}
    if chunk.has_doc_span:
        moved.update(doc_start_byte=chunk.doc_start_byte + shift, doc_end_byte=chunk.doc_end_byte + shift,
                     doc_start_line=chunk.doc_start_line + lines, doc_end_line=chunk.doc_end_line + lines)
    return dataclasses.replace(chunk, **moved)
