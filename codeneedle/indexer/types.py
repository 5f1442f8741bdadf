"""Plain values passed between the stages and out to the front doors: the import graph's leaf.

Nothing here imports the rest of Needle, so any layer may use these types (the console prints ``Progress`` and
``SearchResult`` without loading the pipeline or the SQLite layer; the store splits identifiers without loading
the encoder).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

# Files larger than this are not indexed unless the settings say otherwise (IndexSettings.max_file_bytes).
DEFAULT_MAX_FILE_BYTES = 1 << 20

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def split_identifier(name: str) -> str:
    """``Config.parseHTTPResponse_v2`` -> ``Config parse HTTP Response v2`` (WordPiece shreds camelCase)."""
    return " ".join(_CAMEL.sub(" ", name.replace("_", " ").replace(".", " ")).split())


@dataclass
class Progress:
    """A snapshot for progress bars (CLI) and $/progress (server)."""

    phase: str  # "scan" (walking) | "index" (chunking files) | "embed" (chunks) | "save" | "done"
    files_done: int = 0
    files_total: int = 0
    chunks_embedded: int = 0
    chunks_to_embed: int = 0
    rate: float = 0.0  # chunks embedded per second, recent
    eta_s: float | None = None  # seconds left in the embed phase, once there is a rate


ProgressFn = Callable[[Progress], None]


@dataclass
class UpdateStats:
    """What one update did."""

    files_scanned: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0  # texts the encoder read
    chunks_reused: int = 0  # texts whose vectors came from the machine's shared cache (another index)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cancelled: bool = False
    compacted_bytes: int = 0  # given back to the disk by a compaction after the update (compaction.py)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def embedded_text(self, verb: str = "embedded") -> str:
        """``12 chunks embedded`` for people, with ``(340 reused from other indexes)`` when the shared cache gave
        some."""
        reused = f" ({self.chunks_reused} reused from other indexes)" if self.chunks_reused else ""
        return f"{self.chunks_embedded} chunks {verb}{reused}"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One hit; ``path`` is relative to the indexed root, lines are 1-based inclusive.

    In a Jupyter notebook, ``start_line``/``end_line`` are the ``.ipynb`` file's lines and ``cell`` is the number
    of the cell (1-based, every cell counted, as a notebook editor shows them), ``cell_start_line``/
    ``cell_end_line`` the lines in that cell's source; ``cell`` is 0 elsewhere.
    """

    path: str
    start_line: int
    end_line: int
    name: str
    kind: str
    language: str
    score: float
    snippet: str
    cell: int = 0
    cell_start_line: int = 0
    cell_end_line: int = 0
    # Holds the query's Chinese, Japanese or Korean words as typed: a match whatever its cosine (scores.good_match).
    verbatim: bool = False

    def to_dict(self) -> dict:
        """Its fields; the cell's only for a result in a notebook, ``verbatim`` only when it holds."""
        out = asdict(self)
        if not self.cell:
            for key in ("cell", "cell_start_line", "cell_end_line"):
                del out[key]
        if not self.verbatim:
            del out["verbatim"]
        return out
