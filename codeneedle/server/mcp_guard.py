"""Every bad MCP request gets an answer that names the problem: the checks and their wording.

The SDK's stdio transport drops a line it cannot parse (invalid JSON, a non-object, a lone surrogate such as
``"\\ud800"``, which its JSON parser rejects) after logging it at debug level, and takes a request whose id is
null, a boolean, a fraction or an object for a notification: either way the client waits forever.
``problem_with_line`` judges each line before the SDK does (``mcp_wire`` answers what it finds): Parse error
or Invalid Request, with the request's id when it is a usable one. Tool arguments are checked before any
work: sizes are capped (the LSP caps queries at 4,096 characters; an unbounded 10 MB MCP query once took
300 s and 2.4 GB), and NUL characters or lone surrogates are refused by name. Argument and params errors
found by pydantic are worded as one sentence per problem instead of pydantic's multi-line dump.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

MAX_QUERY_CHARS = 4096  # indexer.index's cap, restated: the servers start without importing the index
MAX_PATH_CHARS = 4096
MAX_GLOB_CHARS = 1024
MAX_LANG_CHARS = 256
MAX_LIST_ITEMS = 64  # languages or exclude globs in one call, as the LSP's commands allow
MAX_LINE_BYTES = 1 << 20  # one MCP message; a tool call is a few hundred bytes

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
NOT_A_MESSAGE = "Invalid Request: not a JSON-RPC 2.0 request, notification or response"
_SURROGATE = re.compile("[\ud800-\udfff]")
_LIMITS = {"query": MAX_QUERY_CHARS, "path": MAX_PATH_CHARS, "glob": MAX_GLOB_CHARS,
           "exclude_glob": MAX_GLOB_CHARS, "lang": MAX_LANG_CHARS}


class Problem(NamedTuple):
    """The JSON-RPC error a message gets: the id to answer (None: ``"id": null``), the code, the message."""

    id: int | str | None
    code: int
    message: str


# -- tool arguments -------------------------------------------------------------------------------------------

def check_argument(name: str, value: str | None) -> str | None:
    """The problem with one string argument, or None: too long, a lone surrogate, a NUL character."""
    if value is None:
        return None
    limit = _LIMITS.get(name, MAX_QUERY_CHARS)
    if len(value) > limit:
        return f"{name} is too long ({len(value)} characters, at most {limit})"
    found = _SURROGATE.search(value)
    if found:
        return (f"{name} contains a lone surrogate (\\u{ord(found.group()):04x} at character {found.start()}), "
                "which is not valid Unicode")
    if "\0" in value:
        return f"{name} contains a NUL character (at character {value.index(chr(0))})"
    if name in ("glob", "exclude_glob") and "\\" in value:
        return f"{name} contains a backslash: use '/' between folders (globs match POSIX paths relative to the root)"
    return None


def check_value(name: str, value: Any) -> str | None:
    """``check_argument`` for a string or each string of a list (``lang`` and ``exclude_glob`` take both)."""
    if isinstance(value, str):
        return check_argument(name, value)
    if not isinstance(value, list):
        return None
    if len(value) > MAX_LIST_ITEMS:
        return f"{name} lists {len(value)} items, at most {MAX_LIST_ITEMS}"
    return next((p for p in (check_argument(name, v) for v in value if isinstance(v, str)) if p), None)


_NOUNS = {"string": ("a string", "strings"), "integer": ("an integer", "integers"), "number": ("a number", "numbers"),
          "boolean": ("true or false", "booleans"), "object": ("an object", "objects"), "array": ("a list", "lists")}


def expected_value(schema: Mapping[str, Any]) -> str:
    """What a JSON schema accepts, in words: ``{"anyOf": [string, array of string, null]}`` -> "a string or a list
    of strings" (null is left out: an optional argument is better omitted than sent as null)."""
    if "anyOf" in schema:
        return " or ".join(expected_value(s) for s in schema["anyOf"] if s.get("type") != "null") or "null"
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return f"a list of {_NOUNS.get(schema['items'].get('type'), ('', 'values'))[1]}"
    return _NOUNS.get(kind, ("a valid value", ""))[0]


def argument_problems(errors: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> str:
    """One sentence per bad argument from pydantic's errors, its expectation read from the tool's input schema
    (so what is said is what tools/list advertises): ``"query" must be a string; "line" is required``."""
    properties = schema.get("properties") or {}
    problems: dict[str, str] = {}
    for error in errors:
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else "arguments"
        if error.get("type") == "missing":
            problems[name] = f'"{name}" is required'
        elif name in properties:  # a union reports each alternative: one sentence for the argument
            problems.setdefault(name, f'"{name}" must be {expected_value(properties[name])}')
        else:
            problems.setdefault(name, f'"{name}": {_lower(error.get("msg", "is not valid"))}')
    return "; ".join(problems.values())


_TYPE_WORDS = {"string_type": "a string", "dict_type": "an object", "model_type": "an object",
               "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
               "list_type": "a list", "bool_type": "true or false", "bool_parsing": "true or false",
               "float_type": "a number", "float_parsing": "a number"}


def params_problems(errors: Iterable[Mapping[str, Any]]) -> str:
    """One sentence per bad field of a request's params: ``"arguments" must be an object; "name" is required``."""
    problems: dict[str, str] = {}
    for error in errors:
        loc = [str(p) for p in error.get("loc") or ()]
        name = ".".join(loc[1:] if loc[:1] == ["params"] else loc) or "params"
        kind = error.get("type", "")
        if kind == "missing":
            problems[name] = f'"{name}" is required'
        else:
            expected = _TYPE_WORDS.get(kind)
            text = f"must be {expected}" if expected else _lower(error.get("msg", "is not valid"))
            problems.setdefault(name, f'"{name}" {text}')
    return "; ".join(problems.values())


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


# -- transport lines ------------------------------------------------------------------------------------------

def problem_with_line(line: str) -> Problem | None:
    """The error a transport line must be answered with, or None when the SDK can take it as it is."""
    if len(line) > MAX_LINE_BYTES:
        return Problem(None, INVALID_REQUEST,
                       f"Invalid Request: message of {len(line)} characters exceeds {MAX_LINE_BYTES}")
    try:
        data = json.loads(line)  # Python's parser accepts lone surrogates: the id can still be found
    except (ValueError, RecursionError) as exc:
        return Problem(None, PARSE_ERROR, f"Parse error: {str(exc)[:200]}")
    if not isinstance(data, dict):
        return Problem(None, INVALID_REQUEST,
                       f"Invalid Request: a message must be a JSON object, got {type(data).__name__}")
    return problem_with_message(data)


def problem_with_message(data: dict[str, Any]) -> Problem | None:
    """The error a decoded JSON-RPC object must be answered with, or None when the SDK can take it."""
    msg_id = usable_id(data)
    found = _find_surrogate(data)
    if found is not None:
        return Problem(msg_id, PARSE_ERROR,
                       f"Parse error: {found} contains a lone surrogate or bytes that are not UTF-8")
    if data.get("jsonrpc") != "2.0":
        got = f", got {_json_text(data['jsonrpc'])}" if "jsonrpc" in data else ", and it is missing"
        return _invalid(msg_id, f'"jsonrpc" must be "2.0"{got}')
    if "method" in data:
        return _problem_with_call(data, msg_id)
    if "result" in data or "error" in data:
        return None  # a response to a request of ours: the SDK judges it (mcp_wire answers what it refuses)
    return _invalid(msg_id, 'a message needs a "method" (a request or notification), or a "result" or an '
                            '"error" (a response)')


def _problem_with_call(data: dict[str, Any], msg_id: int | str | None) -> Problem | None:
    """A request's or notification's envelope: its method, its id (when it has one), its params."""
    method, params = data["method"], data.get("params")
    if not isinstance(method, str):
        return _invalid(msg_id, f'"method" must be a string, got {_json_type(method)}')
    if "id" in data and msg_id is None:
        # The SDK would take the message for a notification and never answer it.
        return _invalid(None, '"id" must be a string or an integer (MCP request ids are never null), '
                              f"got {_json_type(data['id'])}")
    if params is not None and not isinstance(params, dict):
        return _invalid(msg_id, f'"params" must be an object, got {_json_type(params)}')
    return None


def _invalid(msg_id: int | str | None, what: str) -> Problem:
    return Problem(msg_id, INVALID_REQUEST, f"Invalid Request: {what}")


def usable_id(data: Mapping[str, Any]) -> int | str | None:
    """The message's id when it can be echoed in an answer (a string or an integer), else None."""
    msg_id = data.get("id")
    return msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {_json_text(value)}"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:50]


def _find_surrogate(value: Any, where: str = "message", depth: int = 0) -> str | None:
    if depth > 64:
        return None
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if _SURROGATE.search(k):
                return f"a key of {where}"
            inner = k if where in ("message", "params", "arguments") else f"{where}.{k}"
            found = _find_surrogate(v, inner, depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_surrogate(v, f"{where}[{i}]", depth + 1)
            if found:
                return found
    return None
