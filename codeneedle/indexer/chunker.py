"""Split a file into searchable chunks with tree-sitter.

Rules:
- one ``function`` chunk per top-level function and one ``method`` chunk per method; functions nested in a
  function stay inside their parent's chunk. Qualified names join the enclosing classes and namespaces
  with dots (``Outer.Inner.method``, Go ``Type.Method``, Rust ``impl Trait for Type`` -> ``Type.method``,
  C++ ``Foo::bar`` -> ``Foo.bar``, C# ``Namespace.Class.Method``, PHP ``App\\Models`` -> ``App.Models``, Kotlin
  ``fun String.shout()`` -> ``String.shout``, Swift ``extension Foo`` -> ``Foo.bar``, Lua ``Stack:push`` ->
  ``Stack.push``, ``local M = { add = function ... }`` -> ``M.add``); properties with code (C# accessors, Kotlin
  getters, Swift computed properties) are methods, and so are members named by syntax: C# ``Vec.this[]``,
  ``Vec.operator+``, ``Vec.implicit operator int``, ``Vec.~Vec``, Swift ``Vec.subscript`` and ``Vec.deinit``.
- one ``class`` chunk per class-like definition (class, struct, interface, enum, trait, impl, Ruby module,
  record, protocol, Swift extension, Kotlin/Scala object) whose text keeps the header, fields and each method's
  signature but replaces method bodies with ``...``; its byte range still spans the whole definition.
- code outside every chunk (imports, constants, top-level statements) becomes ``block`` chunks in line
  windows named after the file's stem; a file with no supported language becomes ``text`` windows named
  after the file.
- a chunk's range starts at its decorators / attributes / ``export`` / ``template`` prefix; the doc comment
  above it is not in the range but is recorded in ``doc`` (and kept out of block chunks). Every chunk with a
  doc comment records where it sits (``doc_start_line``... on the Chunk): a Python docstring inside the chunk's
  range, a comment block above it; training's miner reads it from there instead of parsing again.
- a file over ``MAX_PARSE_BYTES`` is not parsed: it becomes ``block`` windows.
- ``text`` is capped at ``MAX_TEXT_BYTES`` of the file: a longer chunk keeps its full byte and line range
  but only the first ``MAX_TEXT_BYTES`` of text (the encoder reads far less than that anyway).

``chunk_source`` never raises: tree-sitter recovers from syntax errors, nothing here recurses over the
tree, and any unexpected failure falls back to line windows.
"""

from __future__ import annotations

import codecs
import dataclasses
import inspect
import logging
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Node, QueryCursor

from codeneedle.indexer.chunks import BLOCK, CLASS, FUNCTION, JS_LANGUAGES, METHOD, TEXT, Chunk, shifted
from codeneedle.indexer.documents import chunk_document
from codeneedle.indexer.formats import FORMATS
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES, get_query, parse_bounded
from codeneedle.indexer.notebooks import chunk_cell
from codeneedle.indexer.source_encoding import transcoded_source, transcoded_wide

logger = logging.getLogger(__name__)

# Comments addressed to tools, not readers: a bundler's purity mark, a linter's or coverage tool's switch.
_ANNOTATION = re.compile(r"\s*(?:[#@]__[A-Z_]+__|(?:istanbul|c8|v8) ignore\b.*|eslint-(?:disable|enable)\b.*|"
                         r"prettier-ignore|@ts-(?:ignore|expect-error|nocheck)\b.*|jshint\b.*|webpack[A-Z]\w*:.*)\s*",
                         re.DOTALL)
# `private:` at column 0 inside a C++ class is no top-level statement: recovery must not cut the class there.
_ACCESS_LABEL = re.compile(rb"(?:public|private|protected)\b[\w ]*:(?!:)")

MAX_TEXT_BYTES = 16 * 1024
# Bigger files are not parsed (tree-sitter's time and memory grow with them): they get block windows.
MAX_PARSE_BYTES = 8 * 1024 * 1024
WINDOW_LINES = 40
MAX_NAME_CHARS = 200
# How far above a definition a /* ... */ doc comment may start.
MAX_DOC_LINES = 400

_HASH_COMMENT_LANGUAGES = frozenset({"python", "ruby", "bash", "elixir", "julia", "perl"})
# Languages whose line comments start with "--" (Lua's "--" and LDoc's "---"; a "--[[ ... --]]" block is no doc).
_DASH_COMMENT_LANGUAGES = frozenset({"lua", "haskell"})
# Languages whose doc comments above a definition are lines of their own comment marker: what opens such a line (the
# stripped line matched at its start), and what comes off each line of the doc. SQL's `--`; HCL's `#` and `//`;
# Fortran's `!`, Doxygen's `!>` and `!!` (not an OpenMP or compiler directive: `!$omp`, `!DIR$`); PowerShell's `#`
# (not `#region`, `#requires`); MATLAB's `%` (not a `%{` block's bracket, nor a `%%` cell title).
_LINE_COMMENTS: dict[str, tuple[re.Pattern[bytes], re.Pattern[str]]] = {
    "sql": (re.compile(rb"--"), re.compile(r"^\s*--+ ?")),
    "hcl": (re.compile(rb"#|//"), re.compile(r"^\s*(?:#+|//+) ?")),
    "fortran": (re.compile(rb"!(?!\$|[A-Za-z]+\$)"), re.compile(r"^\s*![>!<]? ?")),
    "powershell": (re.compile(rb"#(?!region\b|endregion\b|requires\b)(?!>)", re.IGNORECASE), re.compile(r"^\s*#+ ?")),
    "matlab": (re.compile(rb"%(?![{}%])"), re.compile(r"^\s*%+ ?")),
}
# Namespaces written as a statement, not a block (C# `namespace A.B;`, PHP `namespace App\Models;`): they qualify
# what follows them, up to the next one or the end of the file.
_OPEN_SCOPES = frozenset({"file_scoped_namespace_declaration", "namespace_definition", "package_statement"})
# Where a member's code is when it is not a `body` field: C# accessors, Swift computed properties, Kotlin's
# function_body, class_body and enum_class_body children, a Swift subscript's computed_property. Kotlin properties
# keep their getter and setter apart. Elixir's do_block and an Objective-C method's compound_statement are children
# too.
_BODY_FIELDS = ("body", "accessors", "computed_value")
_BODY_TYPES = frozenset({"function_body", "class_body", "enum_class_body", "computed_property", "do_block",
                         "compound_statement", "script_block"})
_ACCESSOR_TYPES = frozenset({"getter", "setter"})
# Nodes that wrap a single definition and belong to it (decorators, export, template<...>, Go `type`).
# Node types that share a wrapper as equals: Go's `type ( ... )` holds specs and aliases alike.
_SIBLING_FAMILIES: dict[str, tuple[str, ...]] = {"type_spec": ("type_spec", "type_alias"),
                                                 "type_alias": ("type_spec", "type_alias")}
_WRAPPERS = frozenset(
    {
        "decorated_definition",
        "export_statement",
        "ambient_declaration",
        "template_declaration",
        "type_declaration",
    }
)
# Prefix siblings that belong to the definition after them (Rust #[...], TypeScript method decorators).
_ATTRIBUTES = frozenset({"attribute_item", "decorator", "annotation"})
_ATTRIBUTE_LANGUAGES = frozenset({"rust", "typescript", "tsx", "dart"})
_SEMICOLON_LANGUAGES = frozenset({"c", "cpp", "objc", "cuda", "sql"})
# Grammars that leave a function's body beside its signature instead of inside it (tree-sitter-dart's
# function_signature / method_signature, then function_body; a constructor's initializer list or redirection):
# the definition runs on over that body.
_SIBLING_BODY_LANGUAGES = frozenset({"dart"})
_SIBLING_BODY_TYPES = frozenset({"function_body", "initializers", "redirection"})
# Languages whose names hold no generics: an operator's name (<<<, <$>, ( <*> ), Base.:<) is kept as written.
_PLAIN_NAME_LANGUAGES = frozenset({"dart", "elixir", "zig", "haskell", "julia", "ocaml", "ocaml_interface", "perl",
                                   "sql", "hcl", "solidity", "fsharp", "fsharp_signature", "powershell", "matlab",
                                   "fortran"})
_FSHARP_LANGUAGES = frozenset({"fsharp", "fsharp_signature"})
_OCAML_LANGUAGES = frozenset({"ocaml", "ocaml_interface"})
# OCaml definitions whose first binding starts after their keyword (`let rec`, `module`, `type`, `class`).
_OCAML_BINDERS = frozenset({"value_definition", "module_definition", "type_definition", "class_definition"})
# A Haskell function is its signature and its equations, side by side in the tree: the first of them is the chunk.
_HASKELL_EQUATIONS = frozenset({"signature", "function", "bind"})
_HADDOCK_MARK = re.compile(r"^\s*\|\s?")
# Elixir module attributes that belong to the def under them (its chunk starts at them); @doc above them is its doc.
_ELIXIR_DEF_ATTRIBUTES = frozenset({"spec", "impl", "deprecated", "decorate"})
# A doc string's quotes: Elixir's "...", """...""" and ~S"""...""", Julia's too.
_QUOTED_DOC = re.compile(r'^(?:~[A-Za-z])?("""|\'\'\'|"|\')(.*)\1[A-Za-z]*$', re.DOTALL)
# Grammars whose indented blocks run on over the comments and blank lines after their last statement (Scala 3's
# `def f =` + indented lines): the doc comment of the next definition would be the end of this one.
# F#'s grammar hangs the `///` doc of a definition on the end of the one before it.
_TRAILING_COMMENT_LANGUAGES = frozenset({"scala", "fsharp", "fsharp_signature"})
_COMMENT_NODES = frozenset({"comment", "block_comment", "line_comment", "multiline_comment", "xml_doc"})
# C/C++ declarators whose inner declarator has no field name: `&f()`, `(f)`.
_BARE_DECLARATORS = frozenset({"reference_declarator", "parenthesized_declarator", "attributed_declarator"})
_FUNCTION_KINDS = frozenset({"function", "method"})
_TYPE_NAME_NODES = frozenset({"type_identifier", "constant"})
_WORD = re.compile(rb"[A-Za-z0-9_\x80-\xff]")
_CLOSERS = frozenset(b" \t\r\n,;)]}")
_SPACE_AROUND_PUNCTUATION = re.compile(r" ?([^\w ]) ?")
# Type arguments follow a name (`Foo<T>`); a Swift operator's name is all symbols (`<`, `<=`, `<*>`) and is kept.
_GENERIC_OPEN = re.compile(r"[\w$]<")
_IDENT_PATH = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_BOM = codecs.BOM_UTF8
_LONE_CR = re.compile(rb"\r(?!\n)")
# A decorator or attribute line (Rust #[..], #![..], Java/TS @name) that may stand before a definition's doc comment.
_ATTRIBUTE_LINE = re.compile(rb"[ \t]*(#\[|#!\[|@[A-Za-z])")
# C# attributes stand on their own lines in brackets: [Obsolete("use Add")].
_CSHARP_ATTRIBUTE_LINE = re.compile(rb"[ \t]*(\[[A-Za-z]|@[A-Za-z])")
_DOUBLE_STAR_LINE = re.compile(r"\s*\*\*(?:[ \t]|$)")
_DOCSTRING_QUOTES = re.compile(r'^[rRbBuUfF]{0,2}("""|\'\'\'|"|\')')
# C# members without an identifier of their own, named as they are written (chunker.csharp_member_name).
_CSHARP_UNNAMED_MEMBERS = frozenset({"indexer_declaration", "operator_declaration", "conversion_operator_declaration",
                                     "destructor_declaration"})


def chunk_source(path: str, data: bytes, language: str | None) -> list[Chunk]:
    """Chunks of one file's raw bytes, sorted by position.

    ``language`` is a name from ``SUPPORTED_LANGUAGES``, or a format's (``formats.FORMATS``: the code and sections
    inside a ``.vue``, ``.ipynb``, ``.md``); anything else (None included) gives ``text`` line windows. Never raises.
    """
    data = bytes(data)
    if (wide := transcoded_wide(data)) is not None:
        return [_rebased(c, wide.to_raw) for c in chunk_source(path, wide.utf8, language)]
    if data.startswith(_BOM):
        # The byte-order mark is not code: chunk what follows it, then shift the byte ranges back onto the file.
        return [shifted(c, len(_BOM), 0) for c in chunk_source(path, data[len(_BOM):], language)]
    if language == "python" and (legacy := transcoded_source(data)) is not None:
        return [_rebased(c, legacy.to_raw) for c in chunk_source(path, legacy.utf8, language)]
    if b"\r" in data:
        # A lone CR ends a line (classic Mac files; editors agree). Same length, so byte ranges stay true.
        data = _LONE_CR.sub(b"\n", data)
    try:
        if language in FORMATS:  # code or sections inside another format: a .vue's scripts, a notebook's cells
            return chunk_document(path, data, language, _Cutter())
        source = _Source(path, data, language)
        if language in SUPPORTED_LANGUAGES:
            if len(data) > MAX_PARSE_BYTES:
                return source.windows(0, len(data), BLOCK)
            return source.chunk_code()
        return source.windows(0, len(data), TEXT)
    except Exception:
        logger.warning("chunker failed on %s; falling back to line windows", path, exc_info=True)
        try:
            return _Source(path, bytes(data), language).windows(0, len(data), TEXT)
        except Exception:
            logger.warning("line windows failed on %s; file left unchunked", path, exc_info=True)
            return []


def chunk_notebook_cell(path: str, data: bytes, number: int, source: str) -> list[Chunk]:
    """Chunks of cell ``number`` (1-based) of the notebook ``path`` (saved bytes ``data``) with the unsaved source
    ``source``, positioned in that source (``notebooks.chunk_cell``). Never raises."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")  # an editor's line ends, as nbformat writes them
    try:
        return chunk_cell(path, bytes(data), number, source, "jupyter", _Cutter())
    except Exception:
        logger.warning("chunker failed on cell %d of %s; reading it as text", number, path, exc_info=True)
        encoded = source.encode("utf-8", "surrogatepass")
        return [dataclasses.replace(c, cell=number, cell_start_line=c.start_line, cell_end_line=c.end_line)
                for c in _Source(path, encoded, "jupyter").windows(0, len(encoded), TEXT)]


class _Cutter:
    """The chunker as the format modules use it (``formats.Cutter``)."""

    def code(self, path: str, data: bytes, language: str) -> list[Chunk]:
        return chunk_source(path, data, language)

    def windows(self, path: str, data: bytes, language: str, spans: Sequence[tuple[int, int]],
                kind: str) -> list[Chunk]:
        source = _Source(path, data, language)
        return [chunk for start, end in spans for chunk in source.windows(start, end, kind)]


def _extent(chunk: Chunk) -> tuple[int, int]:
    """The bytes a chunk owns: its range and its doc comment's."""
    if not chunk.has_doc_span:
        return chunk.start_byte, chunk.end_byte
    return min(chunk.start_byte, chunk.doc_start_byte), max(chunk.end_byte, chunk.doc_end_byte)


def _overlaps(extent: tuple[int, int], start: int, end: int) -> bool:
    return extent[0] < end and extent[1] > start


def _rebased(chunk: Chunk, to_raw: Callable[[int], int]) -> Chunk:
    """``chunk`` of a transcoded file with its byte ranges mapped back onto the file's own bytes."""
    moved = {"start_byte": to_raw(chunk.start_byte), "end_byte": to_raw(chunk.end_byte)}
    if chunk.has_doc_span:
        moved.update(doc_start_byte=to_raw(chunk.doc_start_byte), doc_end_byte=to_raw(chunk.doc_end_byte))
    return dataclasses.replace(chunk, **moved)


@dataclass(slots=True, eq=False)
class _Def:
    """One definition found by the language's query."""

    node: Node
    kind: str  # function | method | class | namespace (capture suffix)
    name_node: Node | None = None
    type_node: Node | None = None
    receiver_node: Node | None = None
    object_node: Node | None = None  # JS `defineGetter(req, 'ip', fn)`: the object the property is defined on
    parent: _Def | None = None
    start: int = 0
    end: int = 0
    in_function: bool = False
    emitted: bool = False
    chunk_kind: str = ""
    qualname: str = ""  # for namespaces without a name: the enclosing prefix (they are transparent)
    scope: str = ""  # what its members' names start with: its qualname, or its prefix for a transparent class
    scope_end: int = 0  # where what it qualifies ends: its node's end, or further for an open scope
    owner_class: _Def | None = None  # nearest enclosing class, through namespaces
    doc: str = ""
    doc_range: tuple[int, int] | None = None  # where ``doc`` sits: a comment above, or a Python docstring inside
    omissions: list[tuple[int, int, bytes]] = field(default_factory=list)


class _Source:
    """One file's bytes plus a line index; builds its chunks."""

    def __init__(self, path: str, data: bytes, language: str | None) -> None:
        self.path = path
        self.data = data
        self.language = language or TEXT
        # Offsets where each line starts; line index of an offset = bisect_right(starts, offset) - 1.
        self.starts = [0]
        self.starts.extend(m.end() for m in re.finditer(b"\n", data))

    # -- positions -------------------------------------------------------------------------------

    def line_index(self, offset: int) -> int:
        return bisect_right(self.starts, offset) - 1

    def line_range(self, start: int, end: int) -> tuple[int, int]:
        """1-based inclusive lines of a half-open byte range (an empty range sits on its start line)."""
        first = self.line_index(start)
        last = self.line_index(end - 1) if end > start else first
        return first + 1, last + 1

    def line_bytes(self, index: int) -> bytes:
        """The bytes of line ``index`` (0-based) without its line break."""
        start = self.starts[index]
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.data)
        return self.data[start:end]

    def text(self, start: int, end: int) -> str:
        return _decode_capped(self.data, start, end)

    def make_chunk(self, kind: str, name: str, start: int, end: int, text: str, doc: str = "",
                   doc_range: tuple[int, int] | None = None) -> Chunk:
        start_line, end_line = self.line_range(start, end)
        if not doc or doc_range is None or doc_range[1] <= doc_range[0]:
            return Chunk(self.path, self.language, kind, name, start_line, end_line, start, end, text, doc)
        doc_first, doc_last = self.line_range(*doc_range)
        return Chunk(self.path, self.language, kind, name, start_line, end_line, start, end, text, doc,
                     doc_first, doc_last, *doc_range)

    # -- code ------------------------------------------------------------------------------------

    def chunk_code(self, recover: bool = True) -> list[Chunk]:
        tree = parse_bounded(self.language, self.data)
        if tree is None:
            logger.info("parsing %s took too long; indexing it in line windows", self.path)
            return self.windows(0, len(self.data), BLOCK)
        chunks = self.chunks_of(tree)
        if recover and tree.root_node.has_error:
            chunks = self.recover(tree.root_node, chunks)
        return chunks

    def recover(self, root: Node, chunks: list[Chunk]) -> list[Chunk]:
        """``chunks`` with each top-level syntax error's span chunked again piece by piece.

        tree-sitter lets one unclosed bracket swallow the rest of a file into an ERROR node, and every definition
        after it would become a block, re-embedded until the file is fixed (a file half-typed when the editor
        saves it). Top-level definitions begin at column 0 after a blank line or a closing ``}``: each such
        paragraph is parsed alone, so only the broken one stays a block.
        """
        errors = [(0, len(self.data))] if root.type == "ERROR" else [
            (n.start_byte, min(n.end_byte, len(self.data))) for n in root.children if n.type == "ERROR"]
        for start, end in self.widened(errors, chunks):
            bounds = self.paragraph_starts(start, end)
            if len(bounds) < 2:
                continue
            bounds.append(end)
            pieces: list[Chunk] = []
            for piece_start, piece_end in zip(bounds, bounds[1:], strict=False):
                piece = _Source(self.path, self.data[piece_start:piece_end], self.language)
                lines = self.line_index(piece_start)
                pieces.extend(shifted(c, piece_start, lines) for c in piece.chunk_code(recover=False))
            chunks = [c for c in chunks if not _overlaps(_extent(c), start, end)] + pieces
        chunks.sort(key=lambda c: (c.start_byte, -c.end_byte))
        return chunks

    def widened(self, spans: list[tuple[int, int]], chunks: list[Chunk]) -> list[tuple[int, int]]:
        """``spans`` grown to whole lines and to every chunk (with its doc comment) they touch, merged: a piece
        then re-chunks all of a chunk it replaces (the imports of a block that ran into the error), and nothing
        kept outside it starts on its first line."""
        regions = sorted((self.starts[self.line_index(s)], e) for s, e in spans)
        extents = [_extent(c) for c in chunks]
        grown = True
        while grown:
            grown = False
            merged: list[tuple[int, int]] = []
            for start, end in regions:
                for lo, hi in extents:
                    if _overlaps((lo, hi), start, end) and (lo < start or hi > end):
                        start, end, grown = min(start, self.starts[self.line_index(lo)]), max(end, hi), True
                if merged and start <= merged[-1][1]:
                    start, end, grown = merged[-1][0], max(end, merged[-1][1]), True
                    merged.pop()
                merged.append((start, end))
            regions = merged
        return regions

    def paragraph_starts(self, start: int, end: int) -> list[int]:
        """Where top-level statements may begin in ``[start, end)``: ``start``'s line, then each line at column 0
        (not a closing bracket nor a C++ access label) after a blank line or a line of closing brackets alone."""
        first = self.line_index(start)
        found = [self.starts[first]]
        previous = self.line_bytes(first)
        for index in range(first + 1, self.line_index(max(start, end - 1)) + 1):
            line = self.line_bytes(index)
            if line[:1].strip() and line[0] not in _CLOSERS and not _ACCESS_LABEL.match(line) and (
                    not previous.strip() or not previous.strip().strip(b")]};,")):
                found.append(self.starts[index])
            previous = line
        return found

    def chunks_of(self, tree) -> list[Chunk]:
        """The chunks of a parsed file: its definitions, then blocks over what they leave."""
        defs = self.find_definitions(tree.root_node)
        self.resolve(defs)
        emitted = [d for d in defs if d.emitted]
        for d in emitted:
            self.attach_doc(d)
            if d.owner_class is not None and d.owner_class.emitted:
                omission = self.omission(d)
                if omission is not None:
                    d.owner_class.omissions.append(omission)
        if self.language in JS_LANGUAGES:
            _share_overload_docs(emitted)

        chunks: list[Chunk] = []
        covered: list[tuple[int, int]] = []
        for d in emitted:
            if d.chunk_kind == CLASS:
                text = self.class_text(d)
            else:
                text = self.text(d.start, d.end)
            chunks.append(
                self.make_chunk(d.chunk_kind, d.qualname or "<anonymous>", d.start, d.end, text, d.doc, d.doc_range)
            )
            covered.append((d.start, d.end))
            if d.doc_range is not None:
                covered.append(d.doc_range)
        chunks.extend(self.gap_blocks(covered))
        chunks.sort(key=lambda c: (c.start_byte, -c.end_byte))
        return chunks

    def find_definitions(self, root: Node) -> list[_Def]:
        """Definitions from the query, one per node, parents before children."""
        by_node: dict[tuple[int, ...], _Def] = {}
        for _pattern, captures in QueryCursor(get_query(self.language)).matches(root):
            node = kind = None
            for capture, nodes in captures.items():
                if capture.startswith("definition.") and nodes:
                    node, kind = nodes[0], capture[len("definition.") :]
            if node is None or kind is None or node.end_byte <= node.start_byte:
                continue
            key: tuple[int, ...] = (node.start_byte, node.end_byte, node.kind_id)
            if node.type == "declaration" and captures.get("name") and not node.has_error:
                # each prototype of a C/C++ declaration (`int a(void), b(int);`) is one of its own, named apart; not
                # in a declaration the parser mended, where a macro (`__THROWNL __attribute__ ((x))`) reads as another
                key += (captures["name"][0].start_byte,)
            d = by_node.get(key)
            if d is None:
                d = by_node[key] = _Def(node, kind)
            elif kind == "method" and d.kind == "function":
                # A more specific pattern (Foo::bar, Foo.prototype.bar) says it is a method.
                d.kind = kind
            if d.name_node is None and captures.get("name"):
                d.name_node = captures["name"][0]
            if d.type_node is None and captures.get("name.type"):
                d.type_node = captures["name.type"][0]
            if d.receiver_node is None and captures.get("receiver"):
                d.receiver_node = captures["receiver"][0]
            if d.object_node is None and captures.get("object"):
                d.object_node = captures["object"][0]
        defs = sorted(by_node.values(), key=lambda d: (d.node.start_byte, -d.node.end_byte))
        for d in defs:
            d.scope_end = _open_scope_end(d.node) if d.node.type in _OPEN_SCOPES else d.node.end_byte
            if (body := self.sibling_body(d.node)) is not None:
                d.scope_end = body.end_byte  # what is defined in a Dart function's body is inside it
        # Ranges of syntax nodes nest, so a stack of open definitions gives each one its parent.
        stack: list[_Def] = []
        for d in defs:
            while stack and not (d.node.end_byte <= stack[-1].scope_end and d.node.start_byte < stack[-1].scope_end):
                stack.pop()
            parent = stack[-1] if stack else None
            while parent is not None and parent.node == d.node:
                parent = parent.parent  # prototypes of one declaration are siblings, not one inside the other
            d.parent = parent
            stack.append(d)
        return defs

    def resolve(self, defs: list[_Def]) -> None:
        """Decide which definitions become chunks, their kinds and qualified names."""
        for d in defs:
            parent = d.parent
            if parent is not None:
                d.in_function = parent.in_function or parent.kind in _FUNCTION_KINDS
                d.owner_class = parent if parent.kind == "class" else parent.owner_class
                prefix = parent.scope if parent.kind in ("class", "namespace") else ""
                if d.node.type == "preproc_function_def":
                    prefix = ""  # the preprocessor knows no namespaces: CLAMP, not geo.CLAMP
            else:
                prefix = ""
            if d.in_function:
                if self.constructor_member(d):
                    owner = d.parent.owner_class.qualname if d.parent.owner_class else d.parent.qualname
                    d.emitted, d.chunk_kind = True, METHOD
                    d.start, d.end = self.extent(d.node)
                    d.qualname = _join(owner, self.definition_name(d))
                continue  # otherwise it stays inside the enclosing function's chunk
            name = self.definition_name(d)
            if self.language == "julia" and d.name_node is not None and d.name_node.type == "field_expression":
                prefix = ""  # function Base.show(...) adds to Base's show, whichever module it is written in
            if self.language == "perl" and d.name_node is not None and b"::" in self.data[d.name_node.start_byte:
                                                                                      d.name_node.end_byte]:
                prefix = ""  # sub My::Other::thing is in My::Other, whichever package it is written in
            if d.kind == "namespace":
                d.qualname = d.scope = _join(prefix, name)
                continue
            if _typedef_body(d):
                continue  # `typedef struct node_s { ... } node_t;` is one chunk, the typedef's, fields and all
            if self.language == "haskell" and _haskell_name(d.node.prev_named_sibling) == _haskell_name(d.node) != "":
                continue  # an equation of the function whose signature (or first equation) is just above it
            sql_start = self.sql_start(d) if self.language == "sql" else None
            if self.language == "sql" and sql_start is None:
                continue  # a statement the grammar misread (CREATE OPERATOR CLASS ... FUNCTION 1 f(...))
            if self.language == "fortran" and d.node.parent is not None and d.node.parent.type == "interface":
                continue  # an interface block's procedure is a declaration, read in its interface's text
            if d.node.type in ("declaration", "type_item") and d.owner_class is not None:
                # A C++ member declared in its class body (`Matrix(int n);`), a Rust associated type (`type Item =
                # u32;` in an impl or trait): read in the class's chunk, not one of its own.
                continue
            d.emitted = True
            d.start, d.end = self.extent(d.node)
            if sql_start is not None:
                d.start = sql_start
            if d.kind == "class":
                d.chunk_kind = CLASS
                d.qualname = _join(prefix, name or self.unnamed(d))
                # A Kotlin companion's members too are named through it (`Outer.Companion.of`, as Java calls them), not
                # as Kotlin calls them (`Outer.of`), which is also the name of the class's own member `of`: expo's and
                # react-native-screens' events define `getEventName` in both (ranking.name_tier still finds `Outer.of`).
                d.scope = d.qualname
                continue
            receiver = self.receiver_name(d)
            name = name or self.unnamed(d)
            if receiver:
                d.chunk_kind = METHOD
                d.qualname = _join(prefix, receiver, name)
            elif d.owner_class is not None or (d.kind == "method" and ("." in name or prefix)):
                d.chunk_kind = METHOD
                d.qualname = _join(prefix, name)
            else:
                d.chunk_kind = FUNCTION
                d.qualname = _join(prefix, name)

    def sql_start(self, d: _Def) -> int | None:
        """Where a SQL definition starts: at the CREATE that its name follows (``CREATE OR REPLACE FUNCTION
        app.total``), past what the grammar read into the statement before it when it could not parse that (``CREATE
        OPERATOR <-> (...);`` is no statement it knows). None when no CREATE of this kind stands right before the
        name: the grammar took a statement it cannot read for one (``CREATE OPERATOR CLASS ... FUNCTION 1 f(...)``)."""
        if d.name_node is None:
            return None
        head = self.data[d.node.start_byte : d.name_node.start_byte]
        opening = head.upper().rfind(b"CREATE")
        if opening < 0 or not _SQL_CREATE.fullmatch(head, opening):
            return None
        return d.node.start_byte + opening

    def unnamed(self, d: _Def) -> str:
        """A name for a JavaScript definition written without one: a function expression's own name
        (``module.exports = function checked() {}``), else its file's (``export default function () {}`` in
        checked.js; an index.js is named after its folder). A Kotlin companion object is ``Companion``, as Kotlin
        names it. Elsewhere "<anonymous>"."""
        if d.node.type == "companion_object":
            return "Companion"
        if self.language not in JS_LANGUAGES:
            return "<anonymous>"
        node: Node | None = d.node
        for _ in range(4):
            if node is None:
                break
            if node.type in ("function_expression", "generator_function", "class"):
                named = node.child_by_field_name("name")
                if named is not None:
                    return self.node_text(named)
            node = (node.child_by_field_name("value") or node.child_by_field_name("right")
                    or (node.named_children[0] if node.type == "expression_statement" else None))
        path = PurePosixPath(self.path)
        stem = path.name.split(".")[0]
        if stem == "index" and path.parent.name:
            stem = path.parent.name
        return _clean_name(stem) or "<anonymous>"

    def constructor_member(self, d: _Def) -> bool:
        """``this.x = function () {}`` directly in a top-level function or method: the object's method ``x``."""
        parent = d.parent
        return (
            self.language in JS_LANGUAGES and parent is not None and parent.emitted and not parent.in_function
            and parent.chunk_kind in _FUNCTION_KINDS and d.name_node is not None
            and self.node_text(d.name_node).startswith("this.")
        )

    def definition_name(self, d: _Def) -> str:
        if d.type_node is not None:
            if self.language == "rust" and d.node.type == "impl_item":
                return self.impl_name(d.node, d.type_node)
            return self.type_name(d.type_node)
        if d.node.type in _CSHARP_UNNAMED_MEMBERS:
            return self.csharp_member_name(d.node)
        if d.name_node is None:
            return ""
        if self.language == "hcl":
            return self.hcl_name(d.node)
        if d.object_node is not None:
            return _clean_name(f"{self.node_text(d.object_node)}.{_clean_name(self.node_text(d.name_node))}")
        if d.name_node.type == "method_index_expression":  # Lua `function Stack:push(v)`: Stack.push
            return _clean_name(self.node_text(d.name_node).replace(":", "."))
        if self.language == "sql":  # quoted as each dialect quotes: "app"."users", `users`, [dbo].[Orders]
            return _plain_name(re.sub(r'["`\[\]]', "", self.node_text(d.name_node)))
        if self.language == "powershell":  # `function global:prompt` defines prompt, in the global scope
            return _plain_name(re.sub(r"(?i)^(?:global|script|local|private):", "", self.node_text(d.name_node)))
        if self.language in _PLAIN_NAME_LANGUAGES:
            return _plain_name(self.node_text(d.name_node))
        if d.node.type == "method_definition" and self.language == "objc":  # initWithFrame:style:
            return _objc_selector(d.node)
        if d.name_node.type == "namespace_name":  # PHP `namespace App\Billing`: App.Billing
            return _clean_name(self.node_text(d.name_node).replace("\\", "."))
        return self.declarator_name(d.name_node)

    def hcl_name(self, block: Node) -> str:
        """A top-level HCL block named as Terraform addresses it: ``resource "aws_s3_bucket" "logs"`` ->
        ``aws_s3_bucket.logs``, ``variable "cidr"`` -> ``var.cidr``, any other its type and labels (``module.vpc``,
        ``data.aws_ami.ubuntu``, ``output.arn``, Packer's ``source.amazon-ebs.ubuntu``)."""
        parts: list[str] = []
        for child in block.named_children:
            if child.type == "block_start":
                break
            text = self.node_text(child)
            if child.type == "string_lit":
                text = text.strip('"')
            parts.append(text)
        if parts and parts[0] == "resource":
            parts = parts[1:]
        elif parts and parts[0] == "variable":
            parts[0] = "var"
        return ".".join(p for p in parts if p)[:MAX_NAME_CHARS]

    def csharp_member_name(self, node: Node) -> str:
        """A C# indexer, operator or finalizer named as written, from its keyword to its symbol or type: ``this[]``,
        ``operator+``, ``operator checked-``, ``implicit operator Vec``, ``~Vec``. An indexer is not named ``Item``,
        the property the compiler makes of it: no source says ``Item``, and a search for it should not land here."""
        if node.type == "indexer_declaration":
            return "this[]"
        if node.type == "destructor_declaration":
            name = node.child_by_field_name("name")
            return "~" + (self.node_text(name) if name is not None else "")
        last = node.child_by_field_name("operator" if node.type == "operator_declaration" else "type")
        first = next((c for c in node.children if c.type in ("operator", "implicit", "explicit")), None)
        if first is None or last is None:
            return "operator"
        return _clean_name(self.data[first.start_byte : last.end_byte].decode("utf-8", "replace"))

    def declarator_name(self, node: Node) -> str:
        """Name text of a name node; C/C++ declarators are followed down to it: ``int *(*f)(void)`` -> f."""
        scopes: list[str] = []
        for _ in range(64):
            if node.type == "qualified_identifier":
                scope = node.child_by_field_name("scope")
                if scope is not None:
                    scopes.append(self.node_text(scope))
                inner = node.child_by_field_name("name")
            elif node.type == "operator_cast":  # `operator bool() const`: named after the target type
                target = node.child_by_field_name("type")
                scopes.append("operator " + (self.node_text(target) if target is not None else ""))
                return _clean_name("::".join(scopes))
            else:
                inner = node.child_by_field_name("declarator")
                if inner is None and node.type in _BARE_DECLARATORS:
                    inner = next((c for c in node.named_children if c.type != "ERROR"), None)
            if inner is None:
                break
            node = inner
        scopes.append(self.node_text(node))
        return _clean_name("::".join(scopes))

    def receiver_name(self, d: _Def) -> str:
        node = d.receiver_node
        if node is None or node.type == "self":
            return ""
        return self.type_name(node)

    def impl_name(self, impl: Node, self_type: Node) -> str:
        """What an ``impl`` block's methods are named after: its type, as ``type_name`` finds it, except that a
        slice or array is named as written (``impl Buf for &[u8]``: ``[u8].remaining``, not ``u8.remaining``
        beside u8's own methods) and a type parameter by the trait (``impl<T: Buf> Buf for &mut T``: ``Buf``)."""
        node = self_type
        while node.type == "reference_type" and node.child_by_field_name("type") is not None:
            node = node.child_by_field_name("type")
        if node.type == "array_type":
            element = node.child_by_field_name("element")
            return f"[{self.type_name(element) if element is not None else ''}]"
        name = self.type_name(self_type)
        params = impl.child_by_field_name("type_parameters")
        trait = impl.child_by_field_name("trait")
        declared = {self.node_text(n) for p in (params.named_children if params is not None else ())
                    if (n := p.child_by_field_name("name")) is not None}
        return self.type_name(trait) if trait is not None and name in declared else name

    def type_name(self, node: Node) -> str:
        """The principal type named by a type expression: ``&'a mut Foo<T>`` -> ``Foo``."""
        queue = deque([node])
        for _ in range(64):
            if not queue:
                break
            current = queue.popleft()
            if current.type in _TYPE_NAME_NODES:
                return _clean_name(self.node_text(current))
            queue.extend(current.named_children[:16])
        names = _IDENT_PATH.findall(_clean_name(self.node_text(node)))
        return names[-1] if names else ""

    def node_text(self, node: Node) -> str:
        end = min(node.end_byte, node.start_byte + 4 * MAX_NAME_CHARS)
        return self.data[node.start_byte : end].decode("utf-8", "replace")

    def extent(self, node: Node) -> tuple[int, int]:
        """Byte range of a definition including the wrappers and attributes that belong to it."""
        for _ in range(8):
            parent = node.parent
            if parent is None or parent.type not in _WRAPPERS:
                break
            family = _SIBLING_FAMILIES.get(node.type, (node.type,))
            if sum(1 for c in parent.named_children if c.type in family) != 1:
                break  # e.g. Go `type ( A struct{}; B = A )`: each spec is its own chunk
            node = parent
        start, end = node.start_byte, min(node.end_byte, len(self.data))  # a line break the parser was given (Kotlin)
        # Sibling lookups scan the parent's children, so only languages that need them pay for them.
        if self.language in _SEMICOLON_LANGUAGES:
            after = node.next_sibling
            if after is not None and after.type == ";" and not after.is_named:
                end = after.end_byte  # `struct s { ... };`
        if self.language in _TRAILING_COMMENT_LANGUAGES:
            end = self.code_end(node, end)
        if self.language == "fortran":
            end = start + len(self.data[start:end].rstrip())  # a statement ends with its line break
        if (body := self.sibling_body(node)) is not None:
            end = min(body.end_byte, len(self.data))
        if self.language in _OCAML_LANGUAGES and node.prev_named_sibling is None and node.parent is not None and \
                node.parent.type in _OCAML_BINDERS:
            start = node.parent.start_byte  # `let rec f x = ...`, `module M = ...`: from the keyword on
        elif self.language in _OCAML_LANGUAGES and node.prev_sibling is not None and node.prev_sibling.type == "and":
            start = node.prev_sibling.start_byte  # `and g x = ...`
        if self.language in _FSHARP_LANGUAGES:
            start = _fsharp_start(node, start)
        if self.language == "julia" and (call := _julia_macro_call(node)) is not None:
            start = call.start_byte  # @inline function f(x) ... end
        if self.language == "haskell" and (name := _haskell_name(node)):
            after = node.next_named_sibling
            while after is not None and _haskell_name(after) == name:
                end, after = after.end_byte, after.next_named_sibling
        if self.language == "kotlin":
            start = self.detached_annotations_start(node, start)
        if self.language == "elixir":
            sibling = node.prev_named_sibling
            while sibling is not None and _elixir_attribute(sibling) in _ELIXIR_DEF_ATTRIBUTES:
                start, sibling = sibling.start_byte, sibling.prev_named_sibling
        sibling = node.prev_named_sibling if self.language in _ATTRIBUTE_LANGUAGES else None
        for _ in range(64):
            if sibling is None or sibling.type not in _ATTRIBUTES:
                break
            start = sibling.start_byte
            sibling = sibling.prev_named_sibling
        return start, end

    def sibling_body(self, node: Node) -> Node | None:
        """The body a grammar left beside ``node``, its signature (Dart), or None."""
        if self.language not in _SIBLING_BODY_LANGUAGES:
            return None
        after = node.next_named_sibling
        return after if after is not None and after.type in _SIBLING_BODY_TYPES else None

    def detached_annotations_start(self, node: Node, start: int) -> int:
        """Where the annotations right above a Kotlin definition start when the grammar left them out of it: after
        an expression-bodied function, ``@Suppress("X")`` on its own line parses as an expression of its own."""
        sibling = node.prev_named_sibling
        for _ in range(16):
            if sibling is None or sibling.type not in ("annotated_expression", "annotation"):
                break
            parts = sibling.named_children if sibling.type == "annotated_expression" else [sibling]
            if not parts or parts[0].type != "annotation" or any(
                    p.type not in ("annotation", "parenthesized_expression") for p in parts[1:]):
                break
            if self.data[sibling.end_byte : start].count(b"\n") > 1 or self.data[sibling.end_byte : start].strip():
                break  # a blank line (or code) between: not this definition's
            start = sibling.start_byte
            sibling = sibling.prev_named_sibling
        return start

    def code_end(self, node: Node, end: int) -> int:
        """``end`` moved back over the whitespace and comments that close ``node``'s range."""
        for _ in range(64):
            trimmed = node.start_byte + len(self.data[node.start_byte : end].rstrip())
            last = node.descendant_for_byte_range(max(node.start_byte, trimmed - 1), trimmed)
            if last is None or last.type not in _COMMENT_NODES or last.start_byte <= node.start_byte:
                return trimmed
            end = last.start_byte
        return end

    # -- docs ------------------------------------------------------------------------------------

    def attach_doc(self, d: _Def) -> None:
        if self.language == "elixir" and (found := self.elixir_doc(d)) is not None:
            d.doc, d.doc_range = found
            return
        if self.language in _OCAML_LANGUAGES:
            d.doc, d.doc_range = self.ocaml_doc(d.start) or self.ocaml_doc_after(d) or ("", None)
            return
        if self.language == "perl" and (found := self.perl_pod(d)) is not None:
            d.doc, d.doc_range = found
            return
        if self.language == "julia" and (found := self.julia_doc(d)) is not None:
            d.doc, d.doc_range = found
            return
        if self.language in ("matlab", "powershell") and (found := self.help_inside(d)) is not None:
            d.doc, d.doc_range = found
            return
        if self.language == "python":
            docstring, string = self.python_docstring(d.node)
            if docstring and string is not None:
                d.doc, d.doc_range = docstring, (string.start_byte, string.end_byte)
                return
        line_style = self.language in _HASH_COMMENT_LANGUAGES or self.language in _DASH_COMMENT_LANGUAGES or \
            self.language in _LINE_COMMENTS
        # `@interface Foo` reads like an annotation line, and the comment under it is its first member's
        found = None if line_style or self.language == "objc" else self.comment_inside(d)
        found = found or self.comment_above(d.start)
        if found is not None:
            d.doc, d.doc_range = found
            if self.language == "csharp":
                d.doc = clean_xml_doc(d.doc)
            if self.language == "haskell":
                d.doc = _HADDOCK_MARK.sub("", d.doc, count=1)  # -- | Haddock's mark
            if self.language == "powershell":
                d.doc = clean_powershell_help(d.doc)

    def help_inside(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """The help a MATLAB function or classdef carries right under its first line (the ``%`` block ``help``
        prints), or a PowerShell function's comment-based help at the top of its body (``<# .SYNOPSIS ... #>``):
        its text and range."""
        node = d.node
        if self.language == "powershell":
            body = next((c for c in node.named_children if c.type == "script_block"), None)
            first = next((c for c in node.named_children if c.type not in ("function_name", "simple_name")), None)
            if first is not None and first.type != "comment" and body is not None and body.named_children:
                first = body.named_children[0]  # function F { <# help #> param(...) }
        else:
            first = next((c for c in node.named_children if c.type not in _MATLAB_SIGNATURE), None)
        if first is None or first.type != "comment":
            return None
        end = first
        while (after := end.next_named_sibling) is not None and after.type == "comment" and \
                after.start_point[0] - end.end_point[0] <= 1:
            end = after  # a run of line comments
        raw = self.data[first.start_byte : end.end_byte].decode("utf-8", "replace")
        if self.language == "powershell":
            text = _strip_marked(raw, _LINE_COMMENTS["powershell"][1])
            if not raw.startswith("<#") and not _HELP_KEYWORD.search(text):
                return None  # a plain comment at the top of the body, no help
            doc = clean_powershell_help(text)
        else:
            doc = _strip_marked(raw, _LINE_COMMENTS["matlab"][1])
        return (doc, (first.start_byte, end.end_byte)) if doc else None

    def elixir_doc(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """A module's ``@moduledoc`` (at the top of its body) or the ``@doc`` above a def, past its ``@spec`` and
        ``@impl``: the string's text and the attribute's range. ``@doc false`` is none."""
        if d.chunk_kind == CLASS:
            body = next((c for c in d.node.named_children if c.type == "do_block"), None)
            attribute = next((c for c in (body.named_children[:8] if body is not None else ())
                              if _elixir_attribute(c) == "moduledoc"), None)
        else:
            attribute = d.node.prev_named_sibling
            while attribute is not None and _elixir_attribute(attribute) in _ELIXIR_DEF_ATTRIBUTES:
                attribute = attribute.prev_named_sibling
            if attribute is not None and _elixir_attribute(attribute) != "doc":
                attribute = None
        if attribute is None:
            return None
        arguments = next((c for c in attribute.named_children[0].named_children if c.type == "arguments"), None)
        value = arguments.named_children[0] if arguments is not None and arguments.named_children else None
        if value is None or value.type not in ("string", "sigil"):
            return None
        match = _QUOTED_DOC.match(self.node_text_full(value))
        if match is None:
            return None
        doc = inspect.cleandoc(match.group(2).replace("\r\n", "\n"))
        return (doc, (attribute.start_byte, attribute.end_byte)) if doc else None

    def ocaml_doc(self, start: int, trailing: bool = False) -> tuple[str, tuple[int, int]] | None:
        """The ``(** ... *)`` doc comment ending on the line above ``start``: its text and range. A plain
        ``(* ... *)`` comment is no doc, as for odoc. ``trailing``: it may follow code on its line (``let limit =
        100 (** The most allowed. *)``)."""
        index = self.line_index(start)
        if index == 0 or self.data[self.starts[index] : start].strip() or \
                not self.line_bytes(index - 1).rstrip().endswith(b"*)"):
            return None
        end = self.starts[index - 1] + len(self.line_bytes(index - 1).rstrip())
        opening = self.data.rfind(b"(*", max(0, self.starts[max(0, index - MAX_DOC_LINES)]), end)
        while opening > 0 and self.data[opening - 1 : opening + 1] == b"((":
            opening = self.data.rfind(b"(*", 0, opening)
        if opening < 0 or not self.data.startswith(b"(**", opening) or self.data.startswith((b"(**)", b"(***"), opening) or \
                (not trailing and self.data[self.starts[self.line_index(opening)] : opening].strip()):
            return None
        text = self.data[opening + 3 : end - 2].decode("utf-8", "replace")
        doc = inspect.cleandoc(text.replace("\r\n", "\n")).strip()
        return (doc, (opening, end)) if doc else None

    def ocaml_doc_after(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """The ``(** ... *)`` right after a declaration, on its last line or the next (``val pop : 'a t -> 'a``
        then ``(** [pop s] removes the top. *)``, the standard library's way), unless it stands right above the
        next definition, whose doc it is then."""
        comment = d.node.next_named_sibling if d.node.type not in ("let_binding", "module_binding", "type_binding",
                                                                 "class_binding") else d.node.parent.next_named_sibling
        if comment is None or comment.type != "comment" or comment.start_point[0] - self.line_index(d.end - 1) > 1:
            return None
        after = comment.next_named_sibling
        if after is not None and after.type != "comment" and after.start_point[0] - comment.end_point[0] <= 1 and \
                comment.start_point[0] > self.line_index(d.end - 1):
            return None
        return self.ocaml_doc(comment.end_byte + 1 if comment.end_byte < len(self.data) else comment.end_byte,
                              trailing=comment.start_point[0] == self.line_index(d.end - 1))

    def perl_pod(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """The POD right above a sub (a blank line at most between), from its last =item or =head2 on (none when
        it holds only =head1 sections): its paragraphs without the commands (``=head2 push`` naming the sub,
        ``=cut``), an ``=item``'s words kept."""
        pod = d.node.prev_named_sibling
        if pod is None or pod.type != "pod" or self.line_index(d.start) - pod.end_point[0] > 2:
            return None
        text = self.node_text_full(pod)
        # A block may run from the module's =head1 NAME (after an =encoding line) down to this sub's =item or
        # =head2: the sub's doc is its last such section; a block of =head1 sections alone is the module's own.
        heads = [m.start() for m in re.finditer(r"^=(?:item|head[2-6])\b", text, re.M)]
        if not heads and re.search(r"^=head1\b", text, re.M):
            return None
        start = heads[-1] if heads else 0
        lines = []
        for line in text[start:].splitlines():
            if line.startswith("=item"):
                line = line[len("=item"):]
            elif line.startswith("="):
                continue
            lines.append(line)
        doc = inspect.cleandoc("\n".join(lines)).strip()
        return (doc, (pod.start_byte + len(text[:start].encode()), pod.end_byte)) if doc else None

    def julia_doc(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """The doc string right above a Julia definition (no blank line between): its text and range."""
        string = d.node.prev_named_sibling if _julia_macro_call(d.node) is not None else None  # @doc "..." f(x) = 1
        if string is None or string.type != "string_literal":
            string = (_julia_macro_call(d.node) or d.node).prev_named_sibling  # above `@inline function f`
        if string is None or string.type != "string_literal" or self.line_index(d.start) - string.end_point[0] > 1:
            return None
        match = _QUOTED_DOC.match(self.node_text_full(string))
        # the signature that conventionally opens it is indented as code: the doc starts at its first word
        doc = inspect.cleandoc(match.group(2).replace("\r\n", "\n")).strip() if match is not None else ""
        return (doc, (string.start_byte, string.end_byte)) if doc else None

    def python_docstring(self, node: Node) -> tuple[str, Node | None]:
        """The docstring's cleaned text and its string node (("", None) when there is none)."""
        body = node.child_by_field_name("body")
        if body is None:
            return "", None
        for i in range(min(body.named_child_count, 8)):
            statement = body.named_child(i)
            if statement is None or statement.type == "comment":
                continue
            if statement.type == "expression_statement" and statement.named_child_count:
                string = statement.named_child(0)
                if string is not None and string.type == "string":
                    return _strip_docstring(self.node_text_full(string)), string
            return "", None
        return "", None

    def node_text_full(self, node: Node) -> str:
        return _decode_capped(self.data, node.start_byte, node.end_byte)

    def comment_inside(self, d: _Def) -> tuple[str, tuple[int, int]] | None:
        """A comment at the top of the definition's own range, after its decorators or attributes only
        (``@logged /** doc */ clear()`` in TypeScript): its cleaned text and range."""
        first, last = self.line_range(d.start, d.end)
        k = first - 1  # 0-based line index
        attribute_line = _CSHARP_ATTRIBUTE_LINE if self.language == "csharp" else _ATTRIBUTE_LINE
        while k < last and attribute_line.match(self.data, max(self.starts[k], d.start)):
            k += 1
        if k >= last:
            return None
        start = max(self.starts[k], d.start)
        line = self.line_bytes(k)[start - self.starts[k]:]
        if line.lstrip().startswith(b"/*"):
            end_k = k
            while end_k < last and b"*/" not in self.line_bytes(end_k):
                end_k += 1
            if end_k >= last:
                return None  # never closed inside the definition
        elif line.lstrip().startswith(b"//"):
            end_k = k
            while end_k + 1 < last and self.line_bytes(end_k + 1).lstrip().startswith(b"//"):
                end_k += 1
        else:
            return None
        range_start = start + len(line) - len(line.lstrip())
        range_end = min(d.end, self.starts[end_k] + len(self.line_bytes(end_k).rstrip()))
        raw = self.data[range_start:range_end].decode("utf-8", "replace")
        return _strip_comment(raw, False), (range_start, range_end)

    def _line_comments_above(self, index: int, is_comment: Callable[[bytes], bool]) -> tuple[list[bytes], int]:
        """The run of line comments right above line ``index``, nearest first, and the index of its top line."""
        lines: list[bytes] = []
        first = index
        k = index - 1
        while k >= 0 and len(lines) < MAX_DOC_LINES:
            line = self.line_bytes(k).strip()
            if not is_comment(line):
                break
            lines.append(line)
            first = k
            k -= 1
        return lines, first

    def comment_above(self, start: int) -> tuple[str, tuple[int, int]] | None:
        """The comment block right above ``start`` (no blank line between): its cleaned text and range. A tool's
        annotation there (``/*#__PURE__*/``, ``// eslint-disable-next-line``) is passed over to the doc above it."""
        found = self._comment_above(start)
        end = found[1][1] if found is not None else start
        for _ in range(3):
            if found is None or not _ANNOTATION.fullmatch(found[0]):
                # The range runs over the annotations too: they belong with the doc, not in a block of their own.
                return None if found is None else (found[0], (found[1][0], max(found[1][1], end)))
            found = self._comment_above(found[1][0])
        return None

    def _comment_above(self, start: int) -> tuple[str, tuple[int, int]] | None:
        index = self.line_index(start)
        if self.data[self.starts[index] : start].strip() or index == 0:
            return None  # code before the definition on its line, or nothing above it
        hash_style = self.language in _HASH_COMMENT_LANGUAGES
        dash_style = self.language in _DASH_COMMENT_LANGUAGES
        lines: list[bytes] = []
        first = index
        above = self.line_bytes(index - 1).strip()
        if self.language == "haskell" and above.endswith(b"-}") and not above.endswith(b"#-}"):
            return self._haskell_block_above(index)  # {- | Haddock -}; {-# PRAGMA #-} is none
        if self.language == "powershell" and above.endswith(b"#>"):
            return self._powershell_block_above(index)
        line_comment = _LINE_COMMENTS.get(self.language)
        if line_comment is not None and line_comment[0].match(above):
            lines, first = self._line_comments_above(index, line_comment[0].match)
            rule = next((i for i, line in enumerate(lines) if _RULE_LINE.fullmatch(line)), None)
            if rule is not None:  # a banner's rule (`-----`) ends the doc above it: a section's title is none
                lines, first = lines[:rule], index - rule
            if not lines:
                return None
            lines.reverse()
            doc = _strip_marked(b"\n".join(lines).decode("utf-8", "replace"), line_comment[1])
            range_start = self.starts[first] + len(self.line_bytes(first)) - len(self.line_bytes(first).lstrip())
            range_end = self.starts[index - 1] + len(self.line_bytes(index - 1).rstrip())
            return (doc, (range_start, max(range_start, range_end))) if doc else None
        if hash_style:
            lines, first = self._line_comments_above(index, lambda ln: ln.startswith(b"#") and not ln.startswith(b"#!"))
        elif dash_style:
            lines, first = self._line_comments_above(
                index, lambda ln: ln.startswith(b"--") and not ln.startswith((b"--[[", b"--[="))
                and ln.lstrip(b"-").strip() not in (b"]]", b"]=]"))
        elif above.startswith(b"//"):
            lines, first = self._line_comments_above(index, lambda ln: ln.startswith(b"//"))
        elif above.endswith(b"*/"):
            k = index - 1
            while k >= 0 and index - k <= MAX_DOC_LINES:
                line = self.line_bytes(k).strip()
                lines.append(line)
                if line.startswith(b"/*"):
                    break
                # "/*" inside the comment's text ("a path like /api/* matches") does not open it; code before
                # the opening on the last line, or the end of an earlier comment, means this is no doc comment.
                if k == index - 1 and not line.startswith(b"*") and b"/*" in line:
                    return None
                if k < index - 1 and b"*/" in line:
                    return None
                k -= 1
            else:
                return None
            first = k
        if not lines:
            return None
        lines.reverse()
        raw = b"\n".join(lines).decode("utf-8", "replace")
        doc = _strip_comment(raw, hash_style, dash_style)
        range_start = self.starts[first] + (
            len(self.line_bytes(first)) - len(self.line_bytes(first).lstrip())
        )
        range_end = self.starts[index - 1] + len(self.line_bytes(index - 1).rstrip())
        return doc, (range_start, max(range_start, range_end))

    def _powershell_block_above(self, index: int) -> tuple[str, tuple[int, int]] | None:
        """The ``<# ... #>`` comment ending on the line above line ``index``: its text and range."""
        k = index - 1
        while k >= 0 and index - k <= MAX_DOC_LINES and not self.line_bytes(k).lstrip().startswith(b"<#"):
            k -= 1
        if k < 0 or not self.line_bytes(k).lstrip().startswith(b"<#"):
            return None
        range_start = self.starts[k] + len(self.line_bytes(k)) - len(self.line_bytes(k).lstrip())
        range_end = self.starts[index - 1] + len(self.line_bytes(index - 1).rstrip())
        raw = self.data[range_start:range_end].decode("utf-8", "replace")
        doc = _strip_marked(raw, _LINE_COMMENTS["powershell"][1])
        return (doc, (range_start, range_end)) if doc else None

    def _haskell_block_above(self, index: int) -> tuple[str, tuple[int, int]] | None:
        """The ``{- ... -}`` comment ending on the line above line ``index``: its text (``|`` mark left for
        ``attach_doc``) and range."""
        k = index - 1
        while k >= 0 and index - k <= MAX_DOC_LINES and not self.line_bytes(k).lstrip().startswith(b"{-"):
            k -= 1
        if k < 0 or not self.line_bytes(k).lstrip().startswith(b"{-") or self.line_bytes(k).lstrip().startswith(b"{-#"):
            return None
        range_start = self.starts[k] + len(self.line_bytes(k)) - len(self.line_bytes(k).lstrip())
        range_end = self.starts[index - 1] + len(self.line_bytes(index - 1).rstrip())
        text = self.data[range_start + 2 : range_end - 2].decode("utf-8", "replace").replace("\r\n", "\n")
        doc = inspect.cleandoc(text).strip()
        return (doc, (range_start, range_end)) if doc.lstrip("| \n") else None

    # -- classes ---------------------------------------------------------------------------------

    def omission(self, d: _Def) -> tuple[int, int, bytes] | None:
        """What to cut from the enclosing class's text for member ``d``: its body, keeping the signature."""
        if self.language in _FSHARP_LANGUAGES or self.language in ("fortran", "matlab"):
            return self.statement_body_omission(d)
        accessors = [c for c in d.node.named_children if c.type in _ACCESSOR_TYPES]
        if accessors:  # a Kotlin property: its getter and setter go, its declaration stays
            body_start, body_end = accessors[0].start_byte, accessors[-1].end_byte
        else:
            body = self.sibling_body(d.node) or _find_body(d.node)
            if body is None:
                return None
            body_start, body_end = body.start_byte, body.end_byte
        body_end = min(body_end, d.end)  # a Scala block that ran over the comments after it (code_end)
        if body_start < d.start or body_end <= body_start:
            return None
        signature = self.data[d.start : body_start].rstrip()
        if signature.endswith(b"{") and self.data[body_end : d.end].strip() == b"}":
            # braces left outside the body node (a PowerShell script block): they go with it
            signature, body_start, body_end = signature[:-1].rstrip(), d.start + len(signature) - 1, d.end
        cut_start = d.start + len(signature)
        if self.data[body_start : body_start + 1] == b"{":
            return cut_start, body_end, b" { ... }"
        if self.data.startswith(b"do", body_start) and self.data[body_start:body_end].endswith(b"end"):
            return cut_start, body_end, b" do ... end"  # Elixir
        if self.data[body_end : d.end].strip() == b"end":
            return cut_start, d.end, b" ... end"
        for arrow in (b"=>", b"=", b":"):  # an expression body: C# `int Twice(int x) => ...;`, Kotlin `fun f() = ...`
            if self.data.startswith(arrow, body_start):
                return cut_start, body_end, b" " + arrow + b" ..."
        return cut_start, body_end, b" ..."

    def statement_body_omission(self, d: _Def) -> tuple[int, int, bytes] | None:
        """A body that no node holds: an F# member's or let's expression after its ``=`` (``member this.Count(code) =
        ...``), a Fortran procedure's statements after its first (``pure function norm(v) result(r) ... end``), a
        MATLAB method's after its help."""
        if self.language in ("fortran", "matlab"):
            children = d.node.named_children
            first = children[0] if self.language == "fortran" and children else next(
                (c.prev_sibling for c in children if c.type == "block" and c.prev_sibling is not None), None)
            if first is None or first.end_byte >= d.end:
                return None
            return d.start + len(self.data[d.start : first.end_byte].rstrip()), d.end, b" ... end"
        inner = next((c for c in d.node.named_children if c.type == "method_or_prop_defn"), d.node)
        equals = next((c for c in inner.children if c.type == "=" and not c.is_named), None)
        if equals is None or not d.start <= equals.end_byte < d.end:
            return None
        return equals.end_byte, d.end, b" ..."

    def class_text(self, d: _Def) -> str:
        pieces: list[bytes] = []
        position = d.start
        size = 0
        for start, end, replacement in sorted(d.omissions):
            if start < position or size > MAX_TEXT_BYTES:
                continue
            pieces.append(self.data[position:start])
            pieces.append(replacement)
            size += start - position + len(replacement)
            position = end
        pieces.append(self.data[position : min(d.end, position + MAX_TEXT_BYTES + 4)])
        joined = b"".join(pieces)
        return _decode_capped(joined, 0, len(joined))

    # -- line windows ----------------------------------------------------------------------------

    def gap_blocks(self, covered: list[tuple[int, int]]) -> list[Chunk]:
        """``block`` windows over the bytes that no chunk (or doc comment) covers."""
        chunks: list[Chunk] = []
        position = 0
        for start, end in sorted(covered):
            if start > position:
                chunks.extend(self.windows(self.after_closers(position, start), start, BLOCK))
            position = max(position, end)
        if position < len(self.data):
            chunks.extend(self.windows(self.after_closers(position, len(self.data)), len(self.data), BLOCK))
        return chunks

    def after_closers(self, start: int, end: int) -> int:
        """Where a gap's code starts: past the ``,`` / ``};`` / ``)`` that close a construct whose members were
        chunks of their own (an object literal's methods), which would otherwise open a block and be its snippet;
        at the start of its line when only indentation precedes it there (``trim`` keeps that indentation)."""
        position = start
        while position < end and self.data[position] in _CLOSERS:
            position += 1
        line_start = self.starts[self.line_index(position)]
        if start <= line_start < position and not self.data[line_start:position].strip():
            return line_start
        return position

    def windows(self, start: int, end: int, kind: str) -> list[Chunk]:
        """Chunks of up to ``WINDOW_LINES`` lines / ``MAX_TEXT_BYTES`` bytes over ``[start, end)``."""
        start, end = self.trim(start, end)
        if start >= end:
            return []
        name = PurePosixPath(self.path).name or self.path
        if kind == BLOCK:
            name = PurePosixPath(self.path).stem or name
        starts = self.starts
        chunks: list[Chunk] = []
        line = self.line_index(start)
        last = self.line_index(end - 1)
        while line <= last:
            window_start = max(start, starts[line])
            stop = min(line + WINDOW_LINES, last + 1)
            window_end = end if stop > last else starts[stop]
            if window_end - window_start > MAX_TEXT_BYTES and stop > line + 1:
                stop = max(line + 1, bisect_right(starts, window_start + MAX_TEXT_BYTES, line + 1, stop) - 1)
                window_end = end if stop > last else starts[stop]
            line = stop
            s, e = self.trim(window_start, window_end)
            if s >= e or (kind == BLOCK and not _WORD.search(self.data, s, e)):
                continue
            chunks.append(self.make_chunk(kind, name, s, e, self.text(s, e)))
        return chunks

    def trim(self, start: int, end: int) -> tuple[int, int]:
        """Drop surrounding whitespace, but keep the indentation of the first line when it starts there."""
        piece = self.data[start:end]
        stripped = piece.lstrip()
        if not stripped:
            return start, start
        first = start + len(piece) - len(stripped)
        end = start + len(piece.rstrip())
        line_start = self.starts[self.line_index(first)]
        if line_start >= start:
            first = line_start
        return first, end


def _find_body(node: Node) -> Node | None:
    """The ``body`` of a definition, looking a few levels down (``const f = () => {...}``)."""
    for name in _BODY_FIELDS:
        body = node.child_by_field_name(name)
        if body is not None:
            return body
    for child in node.named_children:
        if child.type in _BODY_TYPES:
            return child
    queue = deque([(node, 0)])
    while queue:
        current, depth = queue.popleft()
        body = current.child_by_field_name("body")
        if body is not None:
            return body
        if depth < 3:
            queue.extend((child, depth + 1) for child in current.named_children[:8])
    return None


def _decode_capped(data: bytes, start: int, end: int) -> str:
    """Decode ``data[start:end]`` (at most ``MAX_TEXT_BYTES``, cut on a character boundary)."""
    cut = min(end, start + MAX_TEXT_BYTES)
    if cut < end:
        # Back off to the start of a UTF-8 sequence rather than leave a replacement character.
        for _ in range(3):
            if cut > start and (data[cut] & 0xC0) == 0x80:
                cut -= 1
    return data[start:cut].decode("utf-8", "replace")


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _strip_generics(text: str) -> str:
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _clean_name(text: str) -> str:
    """Normalise a name as written to a dotted qualified name."""
    # Spaces only survive between words (`operator bool`); `Foo :: bar` and `& at` close up.
    text = _SPACE_AROUND_PUNCTUATION.sub(r"\1", " ".join(text.split())).replace("::", ".")
    if "<" in text and "operator" not in text and _GENERIC_OPEN.search(text):
        text = _strip_generics(text)
    if text in ("module.exports", "exports"):
        return ""  # `module.exports = {...}`: the module itself, no qualifier
    for prefix in ("module.exports.", "exports.", "this."):
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
    text = text.replace(".prototype.", ".").strip("\"'`")
    return text[:MAX_NAME_CHARS]


def _open_scope_end(node: Node) -> int:
    """Where a namespace written as a statement stops qualifying: at the next such statement beside it, else at the
    end of what holds it (the file). One written as a block (PHP ``namespace A { ... }``) ends with its block."""
    if node.child_by_field_name("body") is not None or any(c.type == "block" for c in node.named_children):
        return node.end_byte  # Perl's `package Inner { ... }` too
    sibling = node.next_named_sibling
    while sibling is not None and sibling.type != node.type:
        sibling = sibling.next_named_sibling
    if sibling is not None:
        return sibling.start_byte
    return node.parent.end_byte if node.parent is not None else node.end_byte


def _typedef_body(d: _Def) -> bool:
    """Whether ``d`` is the struct, union or enum a C/C++ ``typedef`` defines in place."""
    parent, outer = d.parent, d.node.parent
    return (d.kind == "class" and parent is not None and outer is not None and outer.type == "type_definition"
            and (outer.start_byte, outer.end_byte) == (parent.node.start_byte, parent.node.end_byte))


def _share_overload_docs(emitted: list[_Def]) -> None:
    """TypeScript overloads: the doc comment sits above the first signature, the implementation that follows the
    signatures holds the code. Each of them gets the doc (the implementation is what a search should find)."""
    for previous, d in zip(emitted, emitted[1:], strict=False):
        if not d.doc and previous.doc and previous.qualname == d.qualname and previous.chunk_kind == d.chunk_kind:
            d.doc, d.doc_range = previous.doc, previous.doc_range


# C# XML doc comments (`/// <summary>...`): references become their names, sections become tag lines as in Javadoc.
_XML_REFERENCE = re.compile(r'<(?:see|seealso|paramref|typeparamref)\s+(?:cref|name|langword|href)\s*=\s*"(?:[A-Z]:)?'
                            r'([^"]*)"\s*/>')
_XML_LINK = re.compile(r'<(see|seealso|a)\b[^>]*>(.*?)</\1\s*>', re.DOTALL)
_XML_SECTION = re.compile(r'<(param|typeparam|exception|returns|value|inheritdoc)\b([^>]*?)(/?)>', re.IGNORECASE)
_XML_ATTRIBUTE = re.compile(r'(?:name|cref)\s*=\s*"(?:[A-Z]:)?([^"]*)"')
_XML_SECTION_TAGS = {"param": "@param", "typeparam": "@typeparam", "exception": "@throws", "returns": "@returns",
                     "value": "@value", "inheritdoc": "@inheritdoc"}
_XML_BREAK = re.compile(r"</?(?:remarks|para|example)\s*/?>|<br\s*/?>", re.IGNORECASE)
_XML_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s[^<>]*)?/?>")
_XML_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


def clean_xml_doc(doc: str) -> str:
    """A C# XML doc comment (markers already stripped) as text: ``<summary>`` and other tags go,
    ``<see cref="T:Foo.Bar"/>`` reads ``Foo.Bar``, ``<param name="x">the x</param>`` becomes the line
    ``@param x the x`` (``<returns>`` ``@returns``, ``<exception cref="E">`` ``@throws E``), ``<remarks>`` and
    ``<para>`` open paragraphs. Text without tags is returned as it is."""
    if "<" not in doc and "&" not in doc:
        return doc
    text = _XML_REFERENCE.sub(r"\1", doc)
    text = _XML_LINK.sub(r"\2", text)

    def section(match: re.Match[str]) -> str:
        named = _XML_ATTRIBUTE.search(match.group(2))
        return f"\n{_XML_SECTION_TAGS[match.group(1).lower()]}{' ' + named.group(1) if named else ''} "

    text = _XML_SECTION.sub(section, text)
    text = _XML_BREAK.sub("\n\n", text)
    text = _XML_TAG.sub("", text)
    for entity, char in _XML_ENTITIES.items():
        text = text.replace(entity, char)
    lines: list[str] = []
    in_tags = False  # the last words were a tag's (its @ line and the lines right under it)
    for line in inspect.cleandoc(text).splitlines():
        tag = line.startswith("@")
        if not line.strip():
            if lines and lines[-1]:
                lines.append("")
            continue
        if tag and in_tags:
            while lines and not lines[-1]:
                lines.pop()  # the tags stand one under the other, as in Javadoc
        in_tags = tag or (in_tags and bool(lines) and bool(lines[-1]))
        lines.append(" ".join(line.split()) if tag else line.rstrip())
    return "\n".join(lines).strip()


def _plain_name(text: str) -> str:
    """A name as written, closed up (``( <*> )`` -> ``(<*>)``) and with ``::`` as a dot (Perl's ``My::Stack``)."""
    return _SPACE_AROUND_PUNCTUATION.sub(r"\1", " ".join(text.split())).replace("::", ".").strip("\"'`")[:MAX_NAME_CHARS]


def _objc_selector(method: Node) -> str:
    """An Objective-C method's selector: ``- (id)initWithFrame:(CGRect)f style:(int)s`` -> ``initWithFrame:style:``,
    ``- (void)dealloc`` -> ``dealloc``."""
    parts: list[str] = []
    for child in method.named_children:
        if child.type == "identifier":
            parts.append(child.text.decode("utf-8", "replace"))
        elif child.type == "method_parameter":
            if not parts or parts[-1].endswith(":"):
                parts.append("")  # an unnamed part: `- (void)set:(id)a :(id)b` is set::
            parts[-1] += ":"
    return "".join(parts)[:MAX_NAME_CHARS]


def _julia_macro_call(node: Node) -> Node | None:
    """The macro call a Julia definition is the last argument of (``@inline function f(x) ... end``), or None."""
    arguments = node.parent
    if arguments is None or arguments.type != "macro_argument_list" or arguments.named_children[-1] != node:
        return None
    call = arguments.parent
    return call if call is not None and call.type == "macrocall_expression" else None


def _haskell_name(node: Node | None) -> str:
    """The name a Haskell signature or equation defines (``push``, ``|>``), or "" for any other node."""
    if node is None or node.type not in _HASKELL_EQUATIONS:
        return ""
    name = node.child_by_field_name("name")
    if name is None and node.named_children and node.named_children[0].type == "infix":
        name = node.named_children[0].child_by_field_name("operator")
    if name is not None and name.type == "prefix_id" and name.named_children:
        name = name.named_children[0]  # (<|>)
    return name.text.decode("utf-8", "replace") if name is not None else ""


def _elixir_attribute(node: Node) -> str:
    """The name of an Elixir module attribute (``@spec ...`` -> ``spec``), or "" for any other node."""
    if node.type != "unary_operator" or not node.named_children or node.children[0].type != "@":
        return ""
    operand = node.named_children[0]
    target = operand.child_by_field_name("target") if operand.type == "call" else operand
    return target.text.decode("utf-8", "replace") if target is not None and target.type == "identifier" else ""


# From CREATE to the name of what it creates: `CREATE OR REPLACE FUNCTION `, `CREATE TEMPORARY TABLE IF NOT EXISTS `,
# MySQL's `CREATE DEFINER=`admin`@`%` PROCEDURE `, `CREATE MATERIALIZED VIEW `, `CREATE CONSTRAINT TRIGGER `.
_SQL_CREATE = re.compile(rb"(?is)CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:[^\s;(]+\s+){0,3}?"
                         rb"(?:FUNCTION|PROCEDURE|PROC|TABLE|VIEW|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?")
# A line of a comment banner: marks only, no words (`-------`, `!=====`, `#####`).
_RULE_LINE = re.compile(rb"[-=#*!%/~_+ \t]{4,}")
# What stands in a MATLAB function's or classdef's first line, before the help under it.
_MATLAB_SIGNATURE = frozenset({"function_output", "identifier", "function_arguments", "superclasses", "attributes",
                               "property_name"})
# Comment-based help's keywords (about_Comment_Based_Help): `.SYNOPSIS`, `.PARAMETER Path`, ...
_HELP_KEYWORD = re.compile(r"^[ \t]*\.(SYNOPSIS|DESCRIPTION|PARAMETER|EXAMPLE|INPUTS|OUTPUTS|NOTES|LINK|COMPONENT|ROLE"
                           r"|FUNCTIONALITY|FORWARDHELPTARGETNAME|FORWARDHELPCATEGORY|REMOTEHELPRUNSPACE|EXTERNALHELP)\b"
                           r"[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def _strip_marked(raw: str, marker: re.Pattern[str]) -> str:
    """A comment's text without its markers: each line's (``--``, ``#``, ``!>``, ``%``) or a block's (``<# #>``,
    ``%{ %}``)."""
    lines = raw.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped in ("%{", "%}", "<#", "#>"):
            continue
        if stripped.startswith("<#"):
            line = line.replace("<#", "", 1)
        if stripped.endswith("#>"):
            line = line[: line.rfind("#>")]
        out.append(marker.sub("", line) if marker.match(line) else line)
    text = inspect.cleandoc("\n".join(line.rstrip() for line in out)).strip()
    return re.sub(r"\n{3,}", "\n\n", text)  # a banner's empty comment lines


def clean_powershell_help(text: str) -> str:
    """PowerShell comment-based help as text: ``.SYNOPSIS`` and ``.DESCRIPTION`` are its paragraphs, every other
    keyword a tag line, as in Javadoc (``.PARAMETER Path`` -> ``@parameter Path``, ``.EXAMPLE`` -> ``@example``)."""
    if not _HELP_KEYWORD.search(text):
        return text

    def keyword(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name in ("synopsis", "description"):
            return "\n"
        return f"\n@{name}{' ' + match.group(2).strip() if match.group(2).strip() else ''}"

    text = _HELP_KEYWORD.sub(keyword, text)
    return re.sub(r"\n{3,}", "\n\n", inspect.cleandoc(text)).strip()


def _fsharp_start(node: Node, start: int) -> int:
    """Where an F# definition starts: at its `type` keyword (or `and`) and the attributes above it
    (``[<EntryPoint>]``), which the grammar leaves to the node around it."""
    parent = node.parent
    if parent is None:
        return start
    if parent.type == "type_definition":
        previous = node.prev_sibling
        if previous is not None and previous.type == "and":
            return previous.start_byte
        if node.prev_named_sibling is None or node.prev_named_sibling.type == "attributes":
            return parent.start_byte
    if parent.type == "declaration_expression" and node.prev_named_sibling is not None and \
            node.prev_named_sibling.type == "attributes":
        return parent.start_byte
    return start


def _strip_docstring(literal: str) -> str:
    match = _DOCSTRING_QUOTES.match(literal)
    if match is None:
        return ""
    quote = match.group(1)
    body = literal[match.end() :]
    if body.endswith(quote):
        body = body[: -len(quote)]
    # cleandoc splits on "\n" only: a file saved with CRLF would keep a "\r" on every line.
    return inspect.cleandoc(body.replace("\r\n", "\n").replace("\r", "\n"))


def _strip_comment(raw: str, hash_style: bool, dash_style: bool = False) -> str:
    """Comment text without its markers: ``//``, ``///``, ``//!``, ``#``, ``--``, ``/** ... */`` and `` * ``."""
    lines = raw.splitlines()
    out: list[str] = []
    if hash_style:
        for line in lines:
            out.append(line.strip()[1:])
    elif dash_style:
        for line in lines:
            out.append(re.sub(r"^\s*--+", "", line))
    elif lines and lines[0].lstrip().startswith("/*"):
        lines[0] = re.sub(r"^\s*/\*+!?", "", lines[0])
        lines[-1] = re.sub(r"\*+/\s*$", "", lines[-1])
        for line in lines:
            # Keep indentation after a leading " * " so code examples in docs survive cleandoc. SQLite's style
            # (and its many copies) starts each line with "** ".
            stars = 2 if _DOUBLE_STAR_LINE.match(line) else 1
            out.append(line.lstrip()[stars:] if line.lstrip().startswith("*") else line)
    else:
        for line in lines:
            out.append(re.sub(r"^\s*//[/!]?", "", line))
    return inspect.cleandoc("\n".join(line.rstrip() for line in out))
