"""workspace/executeCommand arguments: attrs classes, structured strictly by cattrs at the edge.

A client sends ``arguments: [{...}]`` (one object), or the forms a generic client can build where it cannot build
that object (``POSITIONAL``: the fields in order, ``["parse a config file", 5]``; for needle.similar, LSP's
TextDocumentPositionParams). Anything else, a wrong type, a missing or unknown field or an out-of-range value
becomes a JSON-RPC InvalidParams error whose message says exactly what was wrong.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn
from pygls.exceptions import JsonRpcInvalidParams

from codeneedle.server.mcp_guard import check_argument
from codeneedle.server.uris import MAX_URI_CHARS

SEARCH = "needle.search"
SIMILAR = "needle.similar"
REINDEX = "needle.reindex"
STATUS = "needle.status"
OPENED = "needle.opened"
COMMANDS = (SEARCH, SIMILAR, REINDEX, STATUS, OPENED)

MAX_K = 1000  # the library's cap (filters.MAX_K), restated: this module starts without the indexer
MAX_TEXT_CHARS = 16 * 1024 * 1024  # an unsaved buffer's text; the index's maxFileBytes is the real cap


def _positive_k(_inst: Any, _attr: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {value}")


def _query(_inst: Any, _attr: attrs.Attribute, value: str) -> None:
    problem = check_argument("query", value)  # too long, a lone surrogate, a NUL: as the MCP server says it
    if problem:
        raise ValueError(problem)


def _short(_inst: Any, attr: attrs.Attribute, value: str | None) -> None:
    if value is not None and len(value) > MAX_URI_CHARS:
        raise ValueError(f"{attr.name} is too long ({len(value)} characters, at most {MAX_URI_CHARS})")


def _languages(_inst: Any, attr: attrs.Attribute, value: str | list[str] | None) -> None:
    if isinstance(value, list) and len(value) > 64:
        raise ValueError(f"{attr.name} lists at most 64 names")
    _short(_inst, attr, value if isinstance(value, str) else None)


def _globs(_inst: Any, _attr: attrs.Attribute, value: str | list[str] | None) -> None:
    if isinstance(value, list) and len(value) > 64:
        raise ValueError("exclude lists at most 64 globs")
    _short(_inst, _attr, value if isinstance(value, str) else None)


def _buffer_text(_inst: Any, _attr: attrs.Attribute, value: str | None) -> None:
    if value is not None and len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"text is too long ({len(value)} characters, at most {MAX_TEXT_CHARS})")


def _not_negative(_inst: Any, attr: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise ValueError(f"position.{attr.name} must be >= 0, got {value}")


def _cell_index(_inst: Any, _attr: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"cell must be >= 0, got {value}")


def _uris(_inst: Any, attr: attrs.Attribute, value: list[str] | None) -> None:
    if value is None:
        return
    if not value:  # else no folder is searched and the answer is empty, which reads as "nothing matches"
        raise ValueError(f"{attr.name} lists no folder or file: leave it out to search everything")
    if len(value) > 64:
        raise ValueError(f"{attr.name} lists at most 64 URIs")
    for uri in value:
        _short(_inst, attr, uri)


@attrs.frozen
class SearchArgs:
    """``needle.search {query, k?, lang?, glob?, exclude?, kind?, rerank?, within?}``; ``glob: "!dist/**"`` or
    ``exclude`` leave paths out; ``kind`` ("function,method", ["class"], "def") keeps those chunk kinds only;
    ``rerank`` false skips the re-ranker (as-you-type searches), absent follows the settings; ``within``: URIs of
    folders or files in the workspace (Search in Folder): results from there only."""

    query: str = attrs.field(validator=_query)
    k: int = attrs.field(default=10, validator=_positive_k)
    lang: str | list[str] | None = attrs.field(default=None, validator=_languages)
    glob: str | None = attrs.field(default=None, validator=_short)
    exclude: str | list[str] | None = attrs.field(default=None, validator=_globs)
    rerank: bool | None = None
    kind: str | list[str] | None = attrs.field(default=None, validator=_languages)
    within: list[str] | None = attrs.field(default=None, validator=_uris)


@attrs.frozen
class Position:
    """An LSP position (0-based)."""

    line: int = attrs.field(validator=_not_negative)
    character: int = attrs.field(default=0, validator=_not_negative)


@attrs.frozen
class SimilarArgs:
    """``needle.similar {uri, position, k?, text?, cell?}``; ``text``: the document as the editor holds it, when it
    has unsaved edits (the code under the cursor is then read from it, not from the saved file). ``cell``: in the
    notebook ``uri``, the index (0-based, as results' ``cell.index``) of the cell ``position`` is in, relative to
    that cell; ``text`` is then that cell's source."""

    uri: str = attrs.field(validator=_short)
    position: Position
    k: int = attrs.field(default=10, validator=_positive_k)
    text: str | None = attrs.field(default=None, validator=_buffer_text)
    cell: int | None = attrs.field(default=None, validator=_cell_index)


@attrs.frozen
class ReindexArgs:
    """``needle.reindex {uri?}``: one folder (the one holding ``uri``) or all."""

    uri: str | None = attrs.field(default=None, validator=_short)


@attrs.frozen
class StatusArgs:
    """``needle.status {}``."""


def check_search(args: SearchArgs) -> None:
    """The library's own checks (blank query, unknown language, bad glob) as InvalidParams, before any search."""
    from codeneedle.errors import NeedleError
    from codeneedle.indexer.filters import check_query, kind_filter, split_globs
    from codeneedle.indexer.search import language_filter

    try:
        check_query(args.query, args.k)
        language_filter(args.lang)
        kind_filter(args.kind)
        split_globs(args.glob, args.exclude)
        if args.rerank is True:
            from codeneedle.indexer.rerank import require_reranker

            require_reranker()
    except NeedleError as exc:
        raise invalid(f"{SEARCH}: {exc}") from None


def _line(_inst: Any, attr: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise ValueError(f"{attr.name} must be >= 0, got {value}")


@attrs.frozen
class ShownResult:
    """A result the user saw: its file and first line (0-based)."""

    uri: str = attrs.field(validator=_short)
    line: int = attrs.field(validator=_line)


def _above(_inst: Any, _attr: attrs.Attribute, value: list) -> None:
    if len(value) > MAX_K:
        raise ValueError(f"above lists at most {MAX_K} results")


@attrs.frozen
class OpenedArgs:
    """``needle.opened {query, uri, line, name?, above?}``: the user opened this result of ``query``;
    ``above`` are the results listed before it (seen, not chosen)."""

    query: str = attrs.field(validator=_query)
    uri: str = attrs.field(validator=_short)
    line: int = attrs.field(validator=_line)
    name: str | None = attrs.field(default=None, validator=_short)
    above: list[ShownResult] = attrs.field(factory=list, validator=_above)


def _strict(kind: type) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if type(value) is not kind:  # no bool-as-int, no "5" -> 5, no 5 -> "5"
            raise TypeError(f"expected {_name(kind)}, got {_name(type(value))}")
        return value
    return hook


def _str_or_list(value: Any, _type: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TypeError(f"expected a string or a list of strings, got {_name(type(value))}")


converter = cattrs.Converter(forbid_extra_keys=True)
for _kind in (str, int, bool):
    converter.register_structure_hook(_kind, _strict(_kind))
converter.register_structure_hook(str | list[str], _str_or_list)
converter.register_structure_hook(str | list[str] | None, lambda v, t: None if v is None else _str_or_list(v, t))
_position = make_dict_structure_fn(Position, converter, _cattrs_forbid_extra_keys=True)


def _structure_position(value: Any, _type: Any) -> Position:
    if not isinstance(value, dict):
        raise TypeError(f'expected an object like {{"line": 0, "character": 0}}, got {_name(type(value))}')
    return _position(value, Position)


converter.register_structure_hook(Position, _structure_position)

T = TypeVar("T")


# Editors without a Needle plugin build a command's arguments from what they have: Helix's `:lsp-workspace-command
# needle.search "retry with backoff"` sends ["retry with backoff"], Sublime LSP's `lsp_execute` expands "$file_uri",
# "$position" or "$text_document_position" only as whole arguments (never inside an object), Emacs Lisp has its
# TextDocumentPositionParams helpers. Those forms are read as the object they stand for.
POSITIONAL = {SEARCH: ("query", "k"), SIMILAR: ("uri", "position", "k"), REINDEX: ("uri",)}


def parse_arguments(command: str, arguments: list[Any] | None, cls: type[T]) -> T:
    """Structure the single object in ``arguments`` (or its positional form, see ``POSITIONAL``) as ``cls`` or
    raise InvalidParams naming the problem."""
    args = list(arguments or [])
    fields = POSITIONAL.get(command)
    if fields and args and isinstance(args[0], str):  # the fields in order; null leaves one at its default
        if len(args) > len(fields):
            raise invalid(f"{command}: expected at most {len(fields)} arguments ({', '.join(fields)}) or one "
                          f"object, got {len(args)}")
        args = [{f: v for f, v in zip(fields, args, strict=False) if v is not None}]
    if len(args) > 1:
        raise invalid(f"{command}: expected one argument object, got {len(args)} arguments")
    obj = args[0] if args else {}
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise invalid(f"{command}: the argument must be an object like {_example(command)}, got {_name(type(obj))}")
    if command == SIMILAR and "textDocument" in obj and "uri" not in obj:
        obj = _from_text_document_position(obj)
    # null leaves a field that has a default at it, as in the settings: Emacs Lisp writes "not given" as nil
    # (`:k nil`), which its JSON encoders send as null.
    optional = {a.name for a in attrs.fields(cls) if a.default is not attrs.NOTHING}
    obj = {key: value for key, value in obj.items() if value is not None or key not in optional}
    try:
        return converter.structure(obj, cls)
    except cattrs.BaseValidationError as exc:
        problems = "; ".join(_problems(exc))
        raise invalid(f"{command}: invalid arguments: {problems}") from None
    except (TypeError, ValueError) as exc:
        raise invalid(f"{command}: invalid arguments: {exc}") from None


def _from_text_document_position(obj: dict[str, Any]) -> dict[str, Any]:
    """LSP's TextDocumentPositionParams (``{textDocument: {uri}, position}``, what clients' helpers build for the
    cursor) as needle.similar's own ``{uri, position}``; the other fields (``k``, ``text``) stay as they are."""
    rest = dict(obj)
    document = rest.pop("textDocument")
    if not isinstance(document, dict) or "uri" not in document:
        raise invalid(f'{SIMILAR}: textDocument must be an object with a "uri", got {_show_value(document)}')
    return {**rest, "uri": document["uri"]}


def _show_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def invalid(message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(message=message)


def _problems(exc: cattrs.BaseValidationError) -> list[str]:
    def fmt(e: BaseException, path: str) -> str:
        where = path[2:] if path.startswith("$.") else path
        if isinstance(e, KeyError):
            return f"missing required field '{where}'"
        if isinstance(e, cattrs.ForbiddenExtraKeysError):
            fields = ", ".join(sorted(map(str, e.extra_fields)))
            return f"unknown field(s) {fields}" + (f" in '{where}'" if where != "$" else "")
        if isinstance(e, ValueError) and not isinstance(e, cattrs.BaseValidationError):
            return str(e)
        return f"'{where}': {e}"

    return [fmt(e, p) for e, p in _walk(exc, "$")]


def _walk(exc: BaseException, path: str):
    """(leaf exception, path) pairs of a cattrs validation error tree."""
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        noted, plain = exc.group_exceptions()
        for inner, note in noted:
            name = getattr(note, "name", None)
            index = getattr(note, "index", None)
            sub = f"{path}.{name}" if name is not None else f"{path}[{index}]" if index is not None else path
            yield from _walk(inner, sub)
        for inner in plain:
            yield from _walk(inner, path)
    elif isinstance(exc, ExceptionGroup):
        for inner in exc.exceptions:
            yield from _walk(inner, path)
    else:
        yield exc, path


def _name(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", float: "number", list: "list", dict: "object",
            type(None): "null"}.get(kind, kind.__name__)


def _example(command: str) -> str:
    return {
        SEARCH: '{"query": "parse a config file", "k": 10}',
        SIMILAR: '{"uri": "file:///...", "position": {"line": 0, "character": 0}}',
        REINDEX: '{"uri": "file:///..."} or {}',
        OPENED: '{"query": "...", "uri": "file:///...", "line": 0, "above": [{"uri": "file:///...", "line": 0}]}',
    }.get(command, "{}")
