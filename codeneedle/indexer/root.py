"""Which folder is the repository: found the way git finds its work tree.

``needle search`` run in ``src/pkg`` must use the index at the top of the project, not start a second one
in the subfolder. The root is the nearest folder at or above the start that holds an index (``.needle/``),
else the nearest that holds ``.git`` (a folder, or a file for worktrees and submodules), else the start.
"""

from __future__ import annotations

import os
from pathlib import Path

from codeneedle.errors import NeedleError
from codeneedle.indexer.settings import INDEX_DIR_NAME

DB_NAME = "index.db"


def find_root(start: str | os.PathLike[str] = ".", *, index_markers: bool = True, files: bool = False) -> Path:
    """The repository root for ``start`` (a folder): nearest ``.needle/`` index, else ``.git``, else ``start``.

    ``index_markers=False`` skips the ``.needle/`` step (an index kept elsewhere with ``--index-dir``).
    ``files``: ``start`` may be a file, which belongs to its folder's repository.
    Raises NeedleError (one line) when ``start`` is missing or not a folder (nor a file, with ``files``).
    """
    path = Path(start).expanduser()
    if not path.exists():
        raise NeedleError(f"path does not exist: {start}")
    if files and path.is_file():
        path = path.absolute().parent  # a symlinked file belongs where the link is
    elif not path.is_dir():
        raise NeedleError(f"not a folder: {start}")
    path = path.resolve()
    chain = [path, *path.parents]
    if index_markers:
        for folder in chain:
            if _is_file(folder / INDEX_DIR_NAME / DB_NAME):
                return folder
    for folder in chain:
        if os.path.lexists(folder / ".git"):
            return folder
    return path


def _is_file(path: Path) -> bool:
    # An unreadable folder on the way (mode 000) is no index: opening it then says "not readable" in one line.
    try:
        return path.is_file()
    except OSError:
        return False


def named_path(path: Path) -> Path:
    """A folder or file a command names, absolute, as :func:`find_root` reads it: a folder resolved; a file's folder
    resolved and the file keeping its own name (a symlinked file is indexed under the link's name)."""
    return path.absolute().parent.resolve() / path.name if path.is_file() else path.resolve()

