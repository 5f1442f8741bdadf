"""The `needle` settings section: initializationOptions and workspace/configuration -> dataclasses.

Every value is checked on its own: an invalid one falls back to its default and yields a warning line, so a
typo in an editor's config never stops the server. Unknown keys (the VS Code extension's own `search.*`,
`server.*`, `trace.*`) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codeneedle.indexer.settings import DEFAULT_MAX_FILE_BYTES, IndexSettings

SECTION = "needle"


@dataclass(frozen=True)
class NeedleSettings:
    """What a client may set for one workspace folder. ``None`` means the library's default."""

    model: str | None = None
    index_dir: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    exclude: tuple[str, ...] = ()
    feedback: bool = True  # record which results the user opens (local log for `needle train --repo`)
    # Server-wide: more repositories to index and search beside the workspace folders (absolute paths).
    extra_roots: tuple[str, ...] = ()

    def for_root(self, root: Path) -> IndexSettings:
        """The library settings for a folder; relative paths are taken relative to that folder."""
        index_dir = None
        if self.index_dir:
            p = Path(self.index_dir).expanduser()
            index_dir = p if p.is_absolute() else root / p
        model = self.model
        if model and (model.startswith(".") or "/" in model) and not Path(model).expanduser().is_absolute():
            model = str(root / model)
        return IndexSettings(model=model, index_dir=index_dir, max_file_bytes=self.max_file_bytes,
                             exclude=self.exclude)


def section_of(raw: Any) -> Any:
    """Unwrap ``{"needle": {...}}`` (VS Code style, or a whole settings tree) to the section itself."""
    if isinstance(raw, dict) and isinstance(raw.get(SECTION), dict):
        return raw[SECTION]
    return raw


def parse_settings(raw: Any, base: NeedleSettings | None = None) -> tuple[NeedleSettings, list[str]]:
    """Merge ``raw`` (a dict, possibly wrapped in ``needle``; None/null = nothing set) over ``base``.

    Returns the settings and one warning per rejected value.
    """
    base = base or NeedleSettings()
    raw = section_of(raw)
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"needle settings should be an object, got {_kind(raw)}; using defaults"]
    warnings: list[str] = []
    changes: dict[str, Any] = {}

    def bad(key: str, value: Any, expected: str, default: Any) -> None:
        warnings.append(f"needle.{key}: expected {expected}, got {_show(value)}; using the default ({default})")

    for key in ("model", "indexDir"):
        if key not in raw:
            continue
        value = raw[key]
        field = "model" if key == "model" else "index_dir"
        if value is None or value == "":
            changes[field] = None
        elif isinstance(value, str) and "\0" not in value:
            changes[field] = value
        else:
            bad(key, value, "a string", "the server's default")

    if "maxFileBytes" in raw:
        value = raw["maxFileBytes"]
        if value is None:
            changes["max_file_bytes"] = DEFAULT_MAX_FILE_BYTES
        elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
            changes["max_file_bytes"] = value
        elif isinstance(value, float) and value.is_integer() and value > 0:
            changes["max_file_bytes"] = int(value)
        else:
            bad("maxFileBytes", value, "a positive integer", DEFAULT_MAX_FILE_BYTES)

    if "exclude" in raw:
        value = raw["exclude"]
        if value is None:
            changes["exclude"] = ()
        elif isinstance(value, str):
            changes["exclude"] = (value,) if value.strip() else ()
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            changes["exclude"] = tuple(v for v in value if v.strip())
        else:
            bad("exclude", value, "a list of glob strings", "none")

    if "feedback" in raw:
        value = raw["feedback"]
        if isinstance(value, bool):
            changes["feedback"] = value
        elif value is not None:
            bad("feedback", value, "true or false", True)
    if "extraRoots" in raw:
        value = raw["extraRoots"]
        if value is None:
            changes["extra_roots"] = ()
        elif isinstance(value, list | tuple) and all(isinstance(v, str) and "\0" not in v for v in value):
            changes["extra_roots"] = tuple(v for v in value if v.strip())
        else:
            bad("extraRoots", value, "a list of folder paths", "none")

    return replace(base, **changes), warnings


def parse_configuration(answer: Any, count: int, base: NeedleSettings) -> tuple[list[NeedleSettings], list[str]]:
    """Interpret a workspace/configuration answer for ``count`` folders.

    VS Code answers a list, one item per folder; Neovim answers its ``settings.needle`` table (or null) per
    item, and some clients send one object for all. Each item is merged over ``base``.
    """
    if isinstance(answer, list) and len(answer) == count:
        items = answer
    else:
        items = [answer] * count
    out: list[NeedleSettings] = []
    warnings: list[str] = []
    for item in items:
        settings, w = parse_settings(item, base)
        out.append(settings)
        warnings += [x for x in w if x not in warnings]
    return out, warnings


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
