"""Which language a file is in, and the tree-sitter objects for it.

Grammars come from the per-language wheels (``tree-sitter-python``, ...). Everything is loaded lazily:
importing this module costs nothing, and a language whose wheel is missing simply has no parser.
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
from functools import cache
from pathlib import Path, PurePath

from tree_sitter import Language, Parser, Query

from codeneedle.indexer.formats import FORMAT_EXTENSIONS
from codeneedle.indexer.source_encoding import utf8_view

# Extension (lower case, with the dot) -> language name.
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".rb": "ruby",
    ".cs": "csharp",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".lua": "lua",
    ".sh": "bash",
    ".bash": "bash",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".m": "objc",
    ".mm": "objc",
    ".zig": "zig",
    ".hs": "haskell",
    ".jl": "julia",
    ".ml": "ocaml",
    ".mli": "ocaml_interface",
    ".pl": "perl",
    ".pm": "perl",
    ".t": "perl",
    ".sql": "sql",
    ".tf": "hcl",
    ".tfvars": "hcl",
    ".hcl": "hcl",
    ".sol": "solidity",
    ".fs": "fsharp",
    ".fsx": "fsharp",
    ".fsi": "fsharp_signature",
    ".ps1": "powershell",
    ".psm1": "powershell",
    ".cu": "cuda",
    ".cuh": "cuda",
    ".f90": "fortran",
    ".f95": "fortran",
    ".f03": "fortran",
    ".f08": "fortran",
    ".f": "fortran",
    ".for": "fortran",
}

# Language name -> (grammar module, function returning the language pointer).
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    # language_php reads PHP inside HTML (text before <?php, between ?> and <?php), as .php files are written
    "php": ("tree_sitter_php", "language_php"),
    "kotlin": ("tree_sitter_kotlin", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "scala": ("tree_sitter_scala", "language"),
    "lua": ("tree_sitter_lua", "language"),
    "bash": ("tree_sitter_bash", "language"),
    "dart": ("tree_sitter_dart", "language"),
    "elixir": ("tree_sitter_elixir", "language"),
    "objc": ("tree_sitter_objc", "language"),
    "zig": ("tree_sitter_zig", "language"),
    "haskell": ("tree_sitter_haskell", "language"),
    "julia": ("tree_sitter_julia", "language"),
    "ocaml": ("tree_sitter_ocaml", "language_ocaml"),
    "ocaml_interface": ("tree_sitter_ocaml", "language_ocaml_interface"),
    "perl": ("tree_sitter_perl", "language"),
    "sql": ("tree_sitter_sql", "language"),
    "hcl": ("tree_sitter_hcl", "language"),
    "solidity": ("tree_sitter_solidity", "language"),
    "fsharp": ("tree_sitter_fsharp", "language"),
    # .fsi signature files (`val add : int -> int`) are a grammar of their own, as OCaml's .mli
    "fsharp_signature": ("tree_sitter_fsharp", "language_signature"),
    "powershell": ("tree_sitter_powershell", "language"),
    "matlab": ("tree_sitter_matlab", "language"),
    "cuda": ("tree_sitter_cuda", "language"),
    "fortran": ("tree_sitter_fortran", "language"),
}

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)

QUERY_DIR = Path(__file__).with_name("queries")

# Parsers keep per-parse state and are not safe to share between threads; languages and queries are.
_local = threading.local()


def language_for_path(path: str | PurePath) -> str | None:
    """Language name for a file path by its extension (case-insensitive): a grammar's, a format's (``vue``,
    ``jupyter``, ``markdown``: ``formats.py``), or None for other text."""
    suffix = PurePath(path).suffix.lower()
    return EXTENSIONS.get(suffix) or FORMAT_EXTENSIONS.get(suffix)


# What a C++ header says that a C one cannot: the C grammar reads ``namespace util { ... }`` as one function named
# ``util`` (290 of torch's .h headers: 569 definitions and 30 doc comments through C, 1,001 and 292 through C++).
_CPP_HEADER = re.compile(rb"^[ \t]*(?:namespace[ \t]+[\w:]*[ \t]*\{|template[ \t]*<|class[ \t]+\w+[^;()]*\{"
                         rb"|(?:public|private|protected)[ \t]*:)|\w::~?\w", re.MULTILINE)
SNIFF_BYTES = 65536


# A script without an extension (bin/deploy, gradlew, configure) says what runs it on its first line. zsh and ksh are
# left out: their syntax goes past what the bash grammar reads.
_SH_SHEBANG = re.compile(rb"#![ \t]*/\S*/(?:env[ \t]+(?:-\S+[ \t]+)*)?(?:ba|da)?sh\b")


# What only Objective-C writes at the start of a line: @interface / @implementation / @protocol Name, #import. A `.h`
# header saying it is Objective-C (a C or C++ one never does: in their comments these words stand after " * " or
# "// "); a `.m` file is Objective-C only when it says so, as MATLAB and Octave use `.m` too. A header that only
# #imports and is otherwise C++ (Objective-C++'s inline helpers, MSVC's #import of a type library) stays C++.
_OBJC_SOURCE = re.compile(rb"^(?:@(?:interface|implementation|protocol)[ \t]+[A-Za-z_]|#import[ \t]*[<\"])",
                          re.MULTILINE)
_OBJC_DECLARATION = re.compile(rb"^@(?:interface|implementation|protocol)[ \t]+[A-Za-z_]", re.MULTILINE)
# What a `.m` file that is not Objective-C says when it is no MATLAB either: Mathematica's packages and comments
# (`BeginPackage["Geo`"]`, `(* ::Package:: *)`), Mercury's declarations (`:- module queue.`), C's preprocessor (a `.m`
# of plain C). Such a file stays text.
_NOT_MATLAB = re.compile(rb"^[ \t]*(?:\(\*|BeginPackage\[|:-[ \t]*[a-z]|#[ \t]*(?:include|define|if|pragma)\b)",
                         re.MULTILINE)


_PERL_SHEBANG = re.compile(rb"#![ \t]*/\S*/(?:env[ \t]+(?:-\S+[ \t]+)*)?perl\b")
# Prolog shares `.pl` with Perl: its directives (`:- module(...)`) and clauses (`parent(X, Y) :- ...`) open lines,
# and it says none of what Perl scripts say at the start of a line.
_PROLOG = re.compile(rb"^(?::-[ \t]*[a-z]|[a-z]\w*(?:\([^\n]*\))?[ \t]*:-)", re.MULTILINE)
_PERL_SOURCE = re.compile(rb"^[ \t]*(?:use[ \t]+[\w:]+|my[ \t]*[$@%(]|sub[ \t]+\w|package[ \t]+[\w:]+[ \t]*[;{]|#!.*perl)"
                          rb"|[$@%]\w+[ \t]*=[^=~]", re.MULTILINE)


def language_for_source(path: str | PurePath, data: bytes) -> str | None:
    """``language_for_path``, except that a ``.h`` header written in C++ is C++, one written in Objective-C (and a
    ``.m`` file only when written in it) is Objective-C, any other ``.m`` file MATLAB (unless it is Mathematica's,
    Mercury's or C: text), a file without an extension whose first line runs sh or bash (``#!/bin/sh``,
    ``#!/usr/bin/env bash``) is bash, one that runs perl Perl, and a ``.pl`` file written in Prolog is text."""
    # Read as the chunker reads it: a C++ header Visual Studio saved in UTF-16 was C, its `class` unseen.
    data = utf8_view(data)
    language = language_for_path(path)
    suffix = PurePath(path).suffix.lower()
    if suffix in (".h", ".m") and language in ("c", "objc"):
        head = data[:SNIFF_BYTES]
        objc = _OBJC_SOURCE.search(head) is not None and (
            suffix == ".m" or _OBJC_DECLARATION.search(head) is not None or not _CPP_HEADER.search(head))
        if objc:
            return "objc"
        if suffix == ".m":
            return None if _NOT_MATLAB.search(head) else "matlab"
    if language == "c" and PurePath(path).suffix.lower() == ".h" and _CPP_HEADER.search(data[:SNIFF_BYTES]):
        return "cpp"
    if language is None and not PurePath(path).suffix and _SH_SHEBANG.match(data):
        return "bash"
    if language is None and not PurePath(path).suffix and _PERL_SHEBANG.match(data):
        return "perl"
    if suffix == ".pl" and _PROLOG.search(data[:SNIFF_BYTES]) and not _PERL_SOURCE.search(data[:SNIFF_BYTES]):
        return None  # Prolog: text, as the Perl grammar would make noise of it
    return language


@cache
def get_language(name: str) -> Language:
    """The tree-sitter ``Language`` for a supported language name (KeyError if unsupported)."""
    module_name, func_name = _GRAMMARS[name]
    module = importlib.import_module(module_name)
    pointer = getattr(module, func_name)()
    if isinstance(pointer, int):
        pointer = _capsule(pointer)
    return Language(pointer)


def _capsule(address: int):
    """A grammar that hands a bare address (tree-sitter-perl 2.0) wrapped as the capsule tree-sitter takes: a bare
    int is deprecated since tree-sitter 0.25 and warns on every load."""
    import ctypes

    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
    return new(address, b"tree_sitter.Language", None)


def get_parser(name: str) -> Parser:
    """A ``Parser`` for ``name``, cached per thread (parsers must not be shared across threads)."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(name)
    if parser is None:
        parser = parsers[name] = Parser(get_language(name))
    return parser


# Grammars that read another's query file: TSX has TypeScript's node types (plus JSX), so one file serves both, and
# CUDA's grammar is C++'s with kernels' qualifiers (`__global__`, `__device__`) and launches (`<<<grid, block>>>`).
_QUERY_FILES = {"tsx": "typescript", "cuda": "cpp"}


@cache
def get_query(name: str) -> Query:
    """The definitions query from ``queries/<name>.scm``, compiled for ``name``'s grammar."""
    source = (QUERY_DIR / f"{_QUERY_FILES.get(name, name)}.scm").read_text(encoding="utf-8")
    return Query(get_language(name), source)


# Parse-time bound. Some grammars are quadratic on some inputs (tree-sitter-python on a long run of comment
# lines: 3,000 lines took 1.4 s, 8,000 took 38 s on the shared 2-core machine), and a parse of bytes holds the
# GIL throughout, freezing every other thread of the language server. Feeding the source through a read
# callback in small pieces lets us (1) give the GIL away every few pieces and (2) stop at a deadline by
# answering "end of input", which ends the parse within milliseconds (measured: a 0.3 s deadline stopped a
# 1.4 s parse at 0.30 s).
PARSE_PIECE_BYTES = 4096
PARSE_BASE_SECONDS = 1.0
PARSE_SECONDS_PER_MIB = 4.0  # normal code parses at several MiB/s; this leaves wide room on a loaded machine


# Grammars that loop forever on some input cut off at the end of the file, where no deadline can stop them (the
# loop never asks for input): tree-sitter-kotlin 1.1.0 on a property, a line break and an annotation just before the
# end (`val x = 1\n@A(1)`, a file being typed; it hung the chunker's property tests). They get a final line break.
_NEWLINE_AT_END = frozenset({"kotlin"})


# Objective-C headers open and close with bare macros (NS_ASSUME_NONNULL_BEGIN ... _END) that tree-sitter-objc reads
# as broken statements, losing the @interface after them (72 of 843 in React Native's headers). The parser reads
# them as blanks of the same length, so byte ranges stay the file's.
_BLANK_LINES = {"objc": re.compile(rb"^[ \t]*(?:NS_ASSUME_NONNULL_(?:BEGIN|END)|RCT_EXTERN_C_(?:BEGIN|END)"
                                   rb"|NS_HEADER_AUDIT_(?:BEGIN|END)\([^)\n]*\))[ \t]*$", re.MULTILINE)}


# React Native's native modules declare their methods through macros (RCT_EXPORT_METHOD(add : (double)a to : (double)b)
# { ... }) that tree-sitter-objc cannot expand: it took the first one for a broken statement and lost every method of
# the @implementation after it, and made methods without a name of the `if` blocks inside (in 45 of React Native's
# 1,100 Objective-C files, 256 uses). The parser reads each as the method it declares (`- (void)add : ... to : ...`,
# a view property's setter by the property's name), in the same bytes, so byte ranges stay the file's.
_NESTED_ARGS = rb"(?:[^()]|\((?:[^()]|\([^()]*\))*\))*"
_RCT_METHOD = re.compile(rb"^([ \t]*)(RCT_EXPORT_METHOD|RCT_REMAP_METHOD|RCT_EXPORT_BLOCKING_SYNCHRONOUS_METHOD"
                         rb"|RCT_CUSTOM_VIEW_PROPERTY)\((" + _NESTED_ARGS + rb")\)", re.MULTILINE)


def _blank(text: bytes) -> bytes:
    return re.sub(rb"[^\n]", b" ", text)


def _rct_method(m: re.Match) -> bytes:
    indent, macro, args = m.group(1), m.group(2), m.group(3)
    head = b"- (id)" if macro == b"RCT_EXPORT_BLOCKING_SYNCHRONOUS_METHOD" else b"- (void)"
    if macro == b"RCT_REMAP_METHOD":  # RCT_REMAP_METHOD(jsName, selector): the selector
        js, comma, rest = args.partition(b",")
        args = _blank(js + comma) + rest
    elif macro == b"RCT_CUSTOM_VIEW_PROPERTY":  # RCT_CUSTOM_VIEW_PROPERTY(name, type, ViewClass): the name
        name, comma, rest = args.partition(b",")
        args = name + _blank(comma + rest)
    return indent + head + b" " * (len(macro) + 1 - len(head)) + args + b" "


def parse_deadline_seconds(size: int) -> float:
    """How long a parse of ``size`` bytes may take before the chunker falls back to line windows."""
    return PARSE_BASE_SECONDS + PARSE_SECONDS_PER_MIB * size / (1 << 20)


@cache
def _callback_keeps_pieces(name: str) -> bool:
    """Whether this py-tree-sitter keeps, for good, one reference to each bytes object a read callback returns.

    0.25.2 and 0.26.1 do (their read wrapper never releases the callback's value): every parse through
    ``parse_bounded`` kept its file's whole text, so a language server or `needle watch` grew by the size of each
    file saved (a day of saves: hundreds of MB), and a first index kept all of the repository's source. Probed once
    per grammar: a new object returned on every read must come back with as many extra references as reads, no
    more, no fewer, before ``_release`` gives them back (a fixed binding keeps none, and is left alone)."""
    piece = bytes(bytearray(b"x\n"))  # a new object, referenced only here
    reads = 0

    def read(offset: int, _point) -> bytes:
        nonlocal reads
        if offset:
            return b""
        reads += 1
        return piece

    before = sys.getrefcount(piece)
    Parser(get_language(name)).parse(read)
    return reads > 0 and sys.getrefcount(piece) - before == reads


def _release(pieces: list[bytes]) -> None:
    """Give back the reference the binding kept to each piece (we hold our own until ``pieces`` goes)."""
    decref = _decref()
    for piece in pieces:
        decref(piece)


@cache
def _decref():
    import ctypes

    return ctypes.PYFUNCTYPE(None, ctypes.py_object)(("Py_DecRef", ctypes.pythonapi))


def parse_bounded(name: str, data: bytes, seconds: float | None = None):
    """A tree-sitter ``Tree`` of ``data``, or None when parsing would take longer than ``seconds``
    (default :func:`parse_deadline_seconds`). Other threads keep running while it parses."""
    import time

    parser = get_parser(name)
    if name in _NEWLINE_AT_END and not data.endswith(b"\n"):
        data += b"\n"  # the tree may then end one byte past the file's end: the chunker keeps to the file
    if name in _BLANK_LINES:
        data = _BLANK_LINES[name].sub(lambda m: b" " * len(m.group()), data)
    if name == "objc" and b"RCT_" in data:
        data = _RCT_METHOD.sub(_rct_method, data)
    deadline = time.monotonic() + (parse_deadline_seconds(len(data)) if seconds is None else seconds)
    expired = False
    calls = 0

    returned: list[bytes] = []

    def read(offset: int, _point) -> bytes:
        nonlocal expired, calls
        calls += 1
        if calls % 16 == 0:
            time.sleep(0)  # let the server's request threads run
            if time.monotonic() > deadline:
                expired = True
        piece = b"" if expired else data[offset : offset + PARSE_PIECE_BYTES]
        if piece:
            returned.append(piece)
        return piece

    # Given back only after a parse that returned: one that raised (Ctrl-C in the callback once it had chosen its
    # piece; the binding reads on after an error) had pieces the binding never took, and giving those back freed
    # them while still in use. There they stay kept: a leak, on an interrupt only.
    tree = parser.parse(read)
    if returned and _callback_keeps_pieces(name):
        _release(returned)
    if expired:
        parser.reset()
        return None
    return tree
