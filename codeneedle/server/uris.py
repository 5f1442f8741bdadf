"""Local ``file:`` URIs from clients (LSP documents and folders, MCP roots) as paths."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

# Longer than any path a file system takes: a client's URI past it is refused, not parsed.
MAX_URI_CHARS = 8192


def uri_to_path(uri: str) -> Path | None:
    """A local ``file:`` URI as an absolute path; None for anything else (other schemes, hosts, NUL bytes)."""
    if not isinstance(uri, str) or len(uri) > MAX_URI_CHARS:
        return None
    try:
        parsed = urlparse(uri)
    except ValueError:
        return None
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    if os.name == "nt":
        from pygls.uris import to_fs_path

        path = to_fs_path(uri)
    else:
        # Percent-escapes are bytes of the file name: one that is not UTF-8 (%FF, as clients and file_uri write a
        # folder named in Latin-1) comes back as the same byte (surrogateescape), not as U+FFFD, a path nowhere.
        path = unquote(parsed.path, errors="surrogateescape")
    if not path or "\0" in path or not os.path.isabs(path):
        return None
    return Path(os.path.normpath(path))
