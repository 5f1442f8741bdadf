"""Which language a file is in, and the tree-sitter objects for it.

Grammars come from the per-language wheels (``tree-sitter-python``, ...). Everything is loaded lazily:
importing this module costs nothing, and a language whose wheel is missing simply has no parser.
"""

from __future__ import annotations

import importlib
import threading
from functools import cache
from pathlib import Path, PurePath

from tree_sitter import Language, Parser, Query

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
}

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)

QUERY_DIR = Path(__file__).with_name("queries")

# Parsers keep per-parse state and are not safe to share between threads; languages and queries are.
_local = threading.local()


def language_for_path(path: str | PurePath) -> str | None:
    """Language name for a file path by its extension (case-insensitive), or None for other text."""
    suffix = PurePath(path).suffix.lower()
    return EXTENSIONS.get(suffix)


@cache
def get_language(name: str) -> Language:
    """The tree-sitter ``Language`` for a supported language name (KeyError if unsupported)."""
    module_name, func_name = _GRAMMARS[name]
    module = importlib.import_module(module_name)
    return Language(getattr(module, func_name)())


def get_parser(name: str) -> Parser:
    """A ``Parser`` for ``name``, cached per thread (parsers must not be shared across threads)."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(name)
    if parser is None:
        parser = parsers[name] = Parser(get_language(name))
    return parser


@cache
def get_query(name: str) -> Query:
    """The definitions query from ``queries/<name>.scm``, compiled for ``name``'s grammar."""
    source = (QUERY_DIR / f"{name}.scm").read_text(encoding="utf-8")
    return Query(get_language(name), source)
