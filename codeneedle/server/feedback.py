"""`needle.opened`: an editor reports which search result the user opened; it goes to that folder's local
feedback log (``codeneedle.indexer.feedback``) unless the folder's ``feedback`` setting is off, and the folder's
query adapter is refitted when enough new opens have come in (``adapting.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from codeneedle.indexer.feedback import Shown, record_open

if TYPE_CHECKING:
    from codeneedle.server.adapting import Refitter
    from codeneedle.server.commands import OpenedArgs
    from codeneedle.server.workspaces import Folder


class Locates(Protocol):
    """What ``record`` needs of the server (``app.NeedleServer``, which imports this module)."""

    refitter: Refitter

    def path_in_workspace(self, uri: str) -> tuple[Folder, Path]: ...


def record(ls: Locates, args: OpenedArgs) -> dict[str, Any]:
    """Log the event in the folder holding ``args.uri``; results above it in other folders are left out."""
    folder, path = ls.path_in_workspace(args.uri)
    rel = folder.relative(path)
    above = []
    for shown in args.above:
        try:
            other, p = ls.path_in_workspace(shown.uri)
        except Exception:  # noqa: BLE001 - a stale or foreign URI in the list only drops that entry
            continue
        r = other.relative(p) if other is folder else None
        if r:
            above.append(Shown(r, shown.line + 1))
    index_dir = folder.index_settings.index_dir_for(folder.real_root)
    ok = bool(rel) and record_open(index_dir, args.query, Shown(rel or "", args.line + 1, args.name or ""), above,
                                   setting=folder.settings.feedback)
    adapting = ok and ls.refitter.opened(folder.real_root, index_dir)
    return {"recorded": ok, "adapting": adapting}
