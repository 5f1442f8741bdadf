"""What an update may touch: the pipeline's narrow view of an index, built by ``Index`` inside ``writing()``.

The update (``pipeline.run_update``) and the embedding step (``embedding.embed_pending``) work through this
value alone, so neither imports ``index.py``: the store to read and write rows in, the three writes that must
stay in step with the ANN index (``commit``, ``add_embeddings``, ``save_vectors``) and the function that turns
texts into vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from codeneedle.indexer.chunks import Chunk
    from codeneedle.indexer.settings import IndexSettings
    from codeneedle.indexer.store import FileRecord, Store

# texts, on_done(texts finished so far) -> float32 (n, dim) unit vectors, in order
EmbedFn = Callable[[list[str], Callable[[int], None] | None], "np.ndarray"]


@dataclass(frozen=True)
class IndexWriter:
    """One writer session's handle on an index (only ever made by ``Index`` while it holds the writer lock)."""

    root: Path
    settings: IndexSettings  # exclude, max_file_bytes
    store: Store
    model_id: str
    embed: EmbedFn
    # Swap files and their chunks in one transaction, mirrored into the ANN index: (chunks removed, added).
    commit: Callable[[list[str], list[FileRecord], dict[str, list[Chunk]], list[FileRecord]], tuple[int, int]]
    # Cache vectors by content hash and make the chunks holding them searchable by meaning: chunks gained.
    add_embeddings: Callable[[list[str], np.ndarray], int]
    save_vectors: Callable[[], None]
