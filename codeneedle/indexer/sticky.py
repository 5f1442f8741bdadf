"""Index-defining settings that stick: stored beside the index and reused until changed.

``needle index --exclude dist/`` followed by a plain ``needle search`` must not bring ``dist/`` back. The
settings that decide what an index holds (``exclude``, ``max_file_bytes``) are kept in
``<index>/settings.json``; a later run that does not give them reuses the stored values, and one that gives
different values says what the next update will re-index. The model sticks through the store itself
(``Index`` keeps the model an index was built with unless another is asked for).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from codeneedle.indexer.settings import IndexSettings

FILE_NAME = "settings.json"
STICKY_FIELDS = ("exclude", "max_file_bytes")
# Who stored a value: an editor's configuration (the servers) or a command line (``needle index --exclude``).
EDITOR = "editor"
COMMAND_LINE = "command line"


def resolve(
    index_dir: Path, given: IndexSettings, explicit: Iterable[str] | None = None,
    notify: Callable[[str], None] | None = None, *, save: bool = True, other_writer: bool = False,
) -> IndexSettings:
    """``given`` with every sticky field that was not set explicitly taken from the stored settings.

    ``explicit`` names the fields the user set; None means an editor's configuration (the servers): the fields
    that differ from the defaults, and those an editor stored before, so that removing a setting in the editor
    brings back what it left out (a value a command line stored stays until changed). Explicit values that
    differ from the stored ones are announced through ``notify`` and stored (when ``save``). While
    ``other_writer`` (another process writes the index: the language server, a watcher) nothing is stored: the
    settings are that writer's to keep.
    """
    data = _read(index_dir)
    stored, sources = _values(data), _sources(data)
    defaults = IndexSettings()
    source = EDITOR if explicit is None else COMMAND_LINE
    chosen = set(explicit) if explicit is not None else {
        f for f in STICKY_FIELDS if getattr(given, f) != getattr(defaults, f) or sources.get(f) == EDITOR}
    values: dict[str, Any] = {}
    changes: list[str] = []
    first: list[str] = []
    built = (index_dir / "index.db").exists()
    for name in STICKY_FIELDS:
        if name in chosen:
            value = getattr(given, name)
            if name in stored and _plain(stored[name]) != _plain(value):
                changes.append(f"{name} {_show(stored[name])} -> {_show(value)}")
            elif name not in stored and built and _plain(getattr(defaults, name)) != _plain(value):
                # An index built with no setting given has no file: it holds what the defaults let in, and a
                # first `--exclude` re-indexes as much as a later change (it went unannounced).
                first.append(f"{name} {_show(getattr(defaults, name))} -> {_show(value)}")
            values[name] = value
        elif name in stored:
            values[name] = tuple(stored[name]) if name == "exclude" else int(stored[name])
        else:
            values[name] = getattr(given, name)
    result = attrs.evolve(given, **values)
    owners = {name: source if name in chosen else sources.get(name, COMMAND_LINE) for name in STICKY_FIELDS}
    # A command line giving the value an editor stored takes it over (removing the editor's setting keeps it).
    retaken = bool(stored) and any(owners[name] != sources.get(name, COMMAND_LINE) for name in chosen)
    wanted = (changes or not stored or retaken) and bool(chosen or stored)
    if other_writer and notify is not None and (changes or (wanted and chosen)):
        shown = changes or [f"{name} {_show(values[name])}" for name in STICKY_FIELDS if name in chosen]
        notify(f"index settings not stored ({'; '.join(shown)}): another needle process writes this index, "
               "which is read as that process keeps it")
    elif (changes or first) and notify is not None:
        notify(f"index settings changed ({'; '.join(changes + first)}): the next update re-indexes the files this "
               "adds or leaves out")
    if save and not other_writer and wanted:
        store(index_dir, result, owners)
    return result


def load(index_dir: Path) -> dict[str, Any]:
    """The stored sticky settings ({} when none or unreadable: defaults then apply)."""
    return _values(_read(index_dir))


def load_sources(index_dir: Path) -> dict[str, str]:
    """Who stored each sticky field: ``EDITOR`` or ``COMMAND_LINE`` (files written before this was recorded: the
    command line, whose values stay until changed)."""
    return _sources(_read(index_dir))


def _read(index_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((index_dir / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _values(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data.get("exclude"), list) and all(isinstance(x, str) for x in data["exclude"]):
        out["exclude"] = data["exclude"]
    if isinstance(data.get("max_file_bytes"), int) and data["max_file_bytes"] > 0:
        out["max_file_bytes"] = data["max_file_bytes"]
    return out


def _sources(data: dict[str, Any]) -> dict[str, str]:
    by = data.get("set_by")
    if not isinstance(by, dict):
        return {}
    return {k: v for k, v in by.items() if k in STICKY_FIELDS and v in (EDITOR, COMMAND_LINE)}


def store(index_dir: Path, settings: IndexSettings, sources: dict[str, str] | None = None) -> None:
    """Write the sticky settings atomically (a failure to write only costs stickiness)."""
    body = json.dumps({"exclude": list(settings.exclude), "max_file_bytes": settings.max_file_bytes,
                       "set_by": sources or {name: COMMAND_LINE for name in STICKY_FIELDS}}, indent=1)
    tmp = index_dir / f".{FILE_NAME}.tmp"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(body + "\n", encoding="utf-8")
        os.replace(tmp, index_dir / FILE_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(f'"{v}"' for v in value) if value else "none"
    return str(value)
