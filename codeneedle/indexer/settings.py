"""The one settings model, read the same way by every door: the CLI, the language server, the MCP server, training.

``IndexSettings`` says how an index is built and where it lives, plus the editors' per-folder extras
(``feedback``, ``extra_roots``). Doors override it with ``attrs.evolve(settings, field=value)``:
- the CLI maps its flags onto it (``codeneedle.cli_options.settings_from``);
- editors send camelCase JSON (``maxFileBytes``, ``indexDir``...), structured by ``converter`` (cattrs) at the
  edge: ``from_json`` raises one ``SettingsError`` naming every bad value, ``merge_json`` drops each bad value
  with a warning line (a typo in an editor's config must never stop the server);
- training evolves it with the model it trained.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from codeneedle.errors import NeedleError
from codeneedle.indexer.types import DEFAULT_MAX_FILE_BYTES

if TYPE_CHECKING:
    import cattrs

__all__ = ["DEFAULT_MAX_FILE_BYTES", "INDEX_DIR_NAME", "IndexSettings", "SettingsError", "converter", "from_json",
           "merge_json", "to_json"]
INDEX_DIR_NAME = ".needle"


def seconds_from_env(name: str, default: float) -> float:
    """``$name`` as a number of seconds (0 or more), else ``default``: a value that is no such number (``2s``,
    ``abc``, ``-1``) is set aside as the other knobs' are, where it stopped every command with a traceback."""
    import math
    import os

    try:
        value = float(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def count_from_env(name: str, default: int) -> int:
    """``$name`` as a whole number of 1 or more, else ``default`` (a malformed tuning knob is set aside)."""
    import os

    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if value >= 1 else default


def _patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Globs or folders as a tuple, blank entries dropped (``--exclude ''`` clears the list)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    return tuple(v for v in value if v.strip())


def _none_if_blank(value: Any) -> Any:
    return None if value is None or value == "" else value


def _path(value: str | Path | None) -> Path | None:
    value = _none_if_blank(value)
    return None if value is None else Path(value)


def _positive(_inst: Any, attr: attrs.Attribute, value: int) -> None:
    if value <= 0:  # 0 or less would silently empty the index
        raise ValueError(f"{attr.name} must be a positive number of bytes, got {value}")


@attrs.frozen
class IndexSettings:
    """How an index is built. ``model`` None means the default encoder; ``index_dir`` None means <root>/.needle.

    Relative ``model``/``index_dir`` from an editor are per folder: ``for_root`` anchors them.
    """

    model: str | None = attrs.field(default=None, converter=_none_if_blank)
    index_dir: Path | None = attrs.field(default=None, converter=_path)
    max_file_bytes: int = attrs.field(default=DEFAULT_MAX_FILE_BYTES, validator=_positive)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=_patterns)
    feedback: bool = True  # record which results the user opens, and learn from them (query_adapter.py)
    rerank: bool = True  # re-score the first stage's top candidates with the cross-encoder (indexer/rerank.py)
    # Server-wide: more repositories to index and search beside the workspace folders (absolute paths).
    extra_roots: tuple[str, ...] = attrs.field(default=(), converter=_patterns)

    def index_dir_for(self, root: Path) -> Path:
        return (self.index_dir or root / INDEX_DIR_NAME).expanduser().resolve()

    def for_root(self, root: Path) -> IndexSettings:
        """These settings for one folder: a relative ``index_dir`` or model folder is taken inside ``root``."""
        index_dir = self.index_dir.expanduser() if self.index_dir else None
        if index_dir is not None and not index_dir.is_absolute():
            index_dir = root / index_dir
        model = self.model
        if model and (model.startswith(".") or "/" in model) and not Path(model).expanduser().is_absolute():
            model = str(root / model)
        return attrs.evolve(self, model=model, index_dir=index_dir)


class SettingsError(NeedleError):
    """Settings JSON with bad values; ``problems`` maps each JSON key to what was expected there."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"needle.{key}: {text}" for key, text in problems.items()))


# -- the JSON edge (editors, initializationOptions, workspace/configuration) ------------------------------------
# Field -> (JSON key, what a value must be, the default in words). The words are the warnings users read.
JSON_FIELDS: dict[str, tuple[str, str, Any]] = {
    "model": ("model", "a string", "the server's default"),
    "index_dir": ("indexDir", "a string", "the server's default"),
    "max_file_bytes": ("maxFileBytes", "a positive integer", DEFAULT_MAX_FILE_BYTES),
    "exclude": ("exclude", "a list of glob strings", "none"),
    "feedback": ("feedback", "true or false", True),
    "rerank": ("rerank", "true or false", True),
    "extra_roots": ("extraRoots", "a list of folder paths", "none"),
}
_FIELD_OF_KEY = {key: name for name, (key, _, _) in JSON_FIELDS.items()}


def _text(value: Any, _type: Any = None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and "\0" not in value:
        return value
    raise TypeError("not a string")


def _byte_count(value: Any, _type: Any = None) -> int:
    if isinstance(value, float) and value.is_integer():  # JSON numbers may arrive as 2048.0
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError("not a positive integer")


def _globs(value: Any, _type: Any = None) -> tuple[str, ...]:
    if isinstance(value, str):  # one pattern
        return _patterns(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return _patterns(value)
    raise TypeError("not a list of strings")


def _folders(value: Any, _type: Any = None) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) and "\0" not in v for v in value):
        return _patterns(value)
    raise TypeError("not a list of paths")


def _flag(value: Any, _type: Any = None) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError("not a boolean")


_HOOKS = {"model": _text, "index_dir": lambda v, t: _path(_text(v)), "max_file_bytes": _byte_count,
          "exclude": _globs, "feedback": _flag, "rerank": _flag, "extra_roots": _folders}

@functools.cache
def converter() -> cattrs.Converter:
    """The cattrs converter of the JSON edge: camelCase keys, one strict hook per field. Built on first use:
    only the servers read JSON, and importing cattrs would cost every one-shot `needle search` ~65 ms (best of
    20 on a shared 2-core machine: `python -c "import cattrs"` 0.120 s, an empty interpreter 0.053 s)."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    conv = cattrs.Converter()
    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook(IndexSettings, make_dict_structure_fn(
        IndexSettings, conv,
        **{name: override(rename=JSON_FIELDS[name][0], struct_hook=hook) for name, hook in _HOOKS.items()}))
    conv.register_unstructure_hook(IndexSettings, make_dict_unstructure_fn(
        IndexSettings, conv, **{name: override(rename=key) for name, (key, _, _) in JSON_FIELDS.items()}))
    return conv


def to_json(settings: IndexSettings) -> dict[str, Any]:
    """The settings as an editor writes them (camelCase keys)."""
    return converter().unstructure(settings)


def from_json(raw: dict[str, Any], base: IndexSettings | None = None) -> IndexSettings:
    """``raw`` (camelCase JSON) over ``base``. null means the default, except ``feedback``: null keeps ``base``'s
    (a null must never turn the recording back on). Unknown keys (an editor's own ``search.*``) are ignored.

    Raises ``SettingsError`` naming every bad value at once.
    """
    data = to_json(base or IndexSettings())
    for key, value in raw.items():
        if key not in _FIELD_OF_KEY:
            continue
        if value is None:
            if key != "feedback":
                data.pop(key)
        else:
            data[key] = value
    import cattrs

    try:
        return converter().structure(data, IndexSettings)
    except cattrs.ClassValidationError as exc:
        noted, plain = exc.group_exceptions()
        if plain or not noted:  # not one field's value: a bug here, not a user's typo
            raise
        bad = [JSON_FIELDS[note.name][0] for _e, note in noted]
    raise SettingsError({key: f"expected {JSON_FIELDS[_FIELD_OF_KEY[key]][1]}, got {_show(raw.get(key))}"
                         for key in bad})


def merge_json(raw: dict[str, Any], base: IndexSettings | None = None) -> tuple[IndexSettings, list[str]]:
    """Like ``from_json``, but each bad value falls back to its default with a warning line instead."""
    warnings: list[str] = []
    good = dict(raw)
    while True:
        try:
            return from_json(good, base), warnings
        except SettingsError as exc:
            for key in exc.problems:
                _, expected, default = JSON_FIELDS[_FIELD_OF_KEY[key]]
                warnings.append(f"needle.{key}: expected {expected}, got {_show(good.pop(key))}; "
                                f"using the default ({default})")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
