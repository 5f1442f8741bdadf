"""The `needle` settings section: initializationOptions and workspace/configuration -> the one settings model.

The model and its camelCase JSON edge live in the library (``codeneedle.indexer.settings``); this module only
unwraps what editors send. Every value is checked on its own: an invalid one falls back with a warning line,
so a typo in an editor's config never stops the server. Unknown keys (the VS Code extension's own `search.*`,
`server.*`, `trace.*`) are ignored.
"""

from __future__ import annotations

from typing import Any

from codeneedle.indexer.settings import IndexSettings, merge_json

SECTION = "needle"
# The server's name for the one model (per-folder settings, before ``for_root`` anchors relative paths).
NeedleSettings = IndexSettings


def section_of(raw: Any) -> Any:
    """Unwrap ``{"needle": {...}}`` (VS Code style, or a whole settings tree) to the section itself."""
    if isinstance(raw, dict) and isinstance(raw.get(SECTION), dict):
        return raw[SECTION]
    return raw


def parse_settings(raw: Any, base: IndexSettings | None = None) -> tuple[IndexSettings, list[str]]:
    """Merge ``raw`` (a dict, possibly wrapped in ``needle``; None/null = nothing set) over ``base``.

    Returns the settings and one warning per rejected value.
    """
    base = base or IndexSettings()
    raw = section_of(raw)
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"needle settings should be an object, got {_kind(raw)}; using defaults"]
    return merge_json(raw, base)


def parse_configuration(answer: Any, count: int, base: IndexSettings) -> tuple[list[IndexSettings], list[str]]:
    """Interpret a workspace/configuration answer for ``count`` folders.

    VS Code answers a list, one item per folder; Neovim answers its ``settings.needle`` table (or null) per
    item, and some clients send one object for all. Each item is merged over ``base``.
    """
    if isinstance(answer, list) and len(answer) == count:
        items = answer
    else:
        items = [answer] * count
    out: list[IndexSettings] = []
    warnings: list[str] = []
    for item in items:
        settings, w = parse_settings(item, base)
        out.append(settings)
        warnings += [x for x in w if x not in warnings]
    return out, warnings


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)
