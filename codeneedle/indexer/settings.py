"""Index settings, shared by the CLI, the language server and the MCP server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 1 << 20
INDEX_DIR_NAME = ".needle"


@dataclass(frozen=True)
class IndexSettings:
    """How an index is built. ``model`` None means the default encoder; ``index_dir`` None means <root>/.needle."""

    model: str | None = None
    index_dir: Path | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    exclude: tuple[str, ...] = field(default_factory=tuple)

    def index_dir_for(self, root: Path) -> Path:
        return (self.index_dir or root / INDEX_DIR_NAME).expanduser().resolve()
