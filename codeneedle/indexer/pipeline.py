"""The incremental update: walk -> diff against SQLite -> chunk -> commit -> embed what is missing.

Lexical first: each batch swaps its files and chunks (with their FTS5 rows) in one transaction (readers see
either the old or the new state of a file, never a mix), so keyword search covers the whole tree within
seconds; ``embedding.embed_pending`` then fills in vectors behind it, committing every few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import TYPE_CHECKING

from codeneedle.indexer import generated
from codeneedle.indexer.chunks import CHUNKER_VERSION, Chunk
from codeneedle.indexer.formats import screened_for_minified
from codeneedle.indexer.ignore import IgnoreRules
from codeneedle.indexer.languages import language_for_source
from codeneedle.indexer.progress import STATE_KEY, RateMeter, mark_state
from codeneedle.indexer.racy import recorded_mtime
from codeneedle.indexer.settings import count_from_env
from codeneedle.indexer.store import FileRecord
from codeneedle.indexer.types import Progress, ProgressFn, UpdateStats
from codeneedle.indexer.walker import (
    BAD_NAME,
    BINARY,
    MINIFIED,
    SECRET,
    SourceFile,
    looks_minified,
    printable_path,
    read_source,
    stat_one,
    storable,
    walk,
)

if TYPE_CHECKING:
    from codeneedle.indexer.writer import IndexWriter

# Skip reasons that depend only on a file's bytes: kept, with its size and mtime, until the file changes.
CONTENT_REASONS = frozenset({BINARY, SECRET, MINIFIED, generated.GENERATED})

# Vectors of code the index no longer holds are kept for when it comes back (a revert, a branch switched back), up
# to as many as the index has chunks, and at least this many; beyond that the oldest go.
OLD_VECTORS_KEPT = count_from_env("NEEDLE_OLD_VECTORS", 10_000)
OLD_VECTORS_KEY = "old_vectors_estimate"

# Files indexed only because a .needleignore `!` line re-includes their generated content. An unchanged file is not
# read again, so without this list a `!` line taken out left such a file in the index until it changed.
REINCLUDED_KEY = "reincluded_generated"

# Smaller batches commit (and show up in searches) sooner; larger ones waste less on per-batch overhead.
FILES_PER_BATCH = count_from_env("NEEDLE_BATCH_FILES", 256)
CHUNKS_PER_BATCH = count_from_env("NEEDLE_BATCH_CHUNKS", 1024)




def run_update(
    index: IndexWriter, paths: list[str] | None, progress: ProgressFn | None = None,
    cancel: threading.Event | None = None, backlog: bool = True,
) -> UpdateStats:
    """Update an index, through its writer, from the whole tree (``paths`` None) or from root-relative paths."""
    started = time.perf_counter()
    report = progress or (lambda p: None)
    stats = UpdateStats()
    store = index.store
    rules = IgnoreRules(index.root, extra_patterns=index.settings.exclude)
    max_bytes = index.settings.max_file_bytes
    bad_names: list[tuple[str, str]] = []
    if paths is not None:
        # A name that is not UTF-8 (os.fsdecode hands it over as lone surrogates) can be neither stored nor looked
        # up: SQLite rejects it, and with it the whole batch of the watcher. Skipped as the walk skips it (if there).
        bad_names = [(printable_path(p), BAD_NAME) for p in paths
                     if not storable(p) and os.path.lexists(index.root / p)]
        paths = [p for p in paths if storable(p)]
    # A watcher batch of a few paths must not pay for reading every file's record.
    records = store.file_records(None if paths is None else paths)
    report(Progress("scan"))

    if paths is None:
        walked = walk(index.root, rules, max_file_bytes=max_bytes)
        candidates = walked.files
        seen = {f.path for f in candidates}
        removed = [p for p in records if p not in seen]
        skipped = list(walked.skipped_paths)
        stats.skipped = dict(walked.skipped)
        skip_scope: list[str] | None = None
    else:
        candidates, removed, skipped = _stat_paths(index, rules, paths, records, max_bytes)
        skipped += bad_names
        skip_scope = list(dict.fromkeys([*paths, *(p for p, _ in bad_names)]))
        for _, reason in skipped:
            stats.skipped[reason] = stats.skipped.get(reason, 0) + 1

    stats.files_scanned = len(candidates)
    # Chunks made by an older chunker: re-chunk every file once (unchanged chunks keep their cached vectors).
    if paths is None and not records and store.get_meta("chunker_version") is None:
        # A new index: whatever this run stores is this chunker's. Recorded now, not once every file is read: a
        # first build stopped while reading (Ctrl-C, kill -9) read every file again on the next run, those it had
        # stored included (1,782 of 3,081 files of site-packages, ~10 s, redone).
        store.set_meta("chunker_version", CHUNKER_VERSION)
    rechunk = paths is None and backlog and store.get_meta("chunker_version") != CHUNKER_VERSION
    reincluded_before = set(json.loads(store.get_meta(REINCLUDED_KEY) or "[]"))
    reincluded = reincluded_before - set(removed)
    todo = [f for f in candidates if rechunk or _stat_changed(records.get(f.path), f)
            or (f.path in reincluded and not rules.needleignore_includes(f.path))]
    if paths is None and not backlog:  # what a cancel left unread is not taken up by a rescan (removals are)
        todo = [f for f in todo if f.path in records]
    if not rechunk:
        todo, still = _still_skipped(todo, records, store.content_skips(), rules)
        skipped += still
        for _, reason, *_ in still:
            stats.skipped[reason] = stats.skipped.get(reason, 0) + 1
    stats.files_unchanged = len(candidates) - len(todo) - (0 if rechunk else len(still))
    stats.files_removed = len(removed)

    with store.transaction():
        store.replace_skipped(skipped, only=skip_scope)
        # Nothing was pending before: only this run's new chunks can lack vectors (no scan of the whole index).
        # ``backlog`` False: chunks left without vectors by a cancelled update stay so (only this run's are embedded),
        # and a full scan reads only files it already knows.
        state = store.get_meta(STATE_KEY)
        was_ready = state == "ready"
        added: list[str] | None = [] if was_ready or not backlog else None
        if backlog and (todo or removed or state == "held"):  # "held": a cancelled update's rest, taken up now
            mark_state(store, "indexing")
        elif todo or removed:
            mark_state(store, "indexing" if was_ready else "held")

    done = 0
    pending_removed = list(removed)
    total = len(todo)
    report(Progress("index", 0, total))
    batch_files: list[FileRecord] = []
    batch_chunks: dict[str, list[Chunk]] = {}
    batch_touch: list[FileRecord] = []
    n_chunks = 0

    def flush() -> None:
        nonlocal batch_files, batch_chunks, batch_touch, n_chunks, pending_removed
        _commit_batch(index, stats, pending_removed, batch_files, batch_chunks, batch_touch, report, done, total)
        pending_removed, batch_files, batch_chunks, batch_touch, n_chunks = [], [], {}, [], 0

    for sf in todo:
        if cancel is not None and cancel.is_set():
            stats.cancelled = True
            break
        read_at = time.time_ns()
        data, brought_back = generated.screen(sf.path, read_source(sf, max_bytes), rules)
        mtime = recorded_mtime(sf.mtime_ns, read_at)
        if not isinstance(data, str) and screened_for_minified(sf.path) and looks_minified(data):
            data = MINIFIED
        done += 1
        if brought_back and not isinstance(data, str):
            reincluded.add(sf.path)  # generated, yet here: a .needleignore `!` line wants it
        else:
            reincluded.discard(sf.path)
        if isinstance(data, str):  # vanished, grew past the cap, turned binary, unreadable
            if sf.path in records:
                pending_removed.append(sf.path)
                stats.files_removed += 1
            stats.skipped[data] = stats.skipped.get(data, 0) + 1
            row = (sf.path, data, sf.size, mtime) if data in CONTENT_REASONS else (sf.path, data)
            with store.transaction():
                store.replace_skipped([] if data == "missing" else [row], only=[sf.path])
            continue
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        language = language_for_source(sf.path, data)
        record = FileRecord(sf.path, sf.size, mtime, digest, language, sf.ctime_ns)
        old = records.get(sf.path)
        if old is not None and old.hash == digest and not rechunk:
            batch_touch.append(record)
            stats.files_unchanged += 1
            continue
        from codeneedle.indexer.chunker import chunk_source  # tree-sitter: only once a file changed

        chunks = chunk_source(sf.path, data, language)
        batch_files.append(record)
        batch_chunks[sf.path] = chunks
        if added is not None:
            added.extend(c.content_hash for c in chunks)
        stats.files_changed += 1
        n_chunks += len(chunks)
        if len(batch_files) >= FILES_PER_BATCH or n_chunks >= CHUNKS_PER_BATCH:
            flush()
    flush()

    if reincluded != reincluded_before:
        store.set_meta(REINCLUDED_KEY, json.dumps(sorted(reincluded)))
    if paths is None and backlog and not stats.cancelled:
        # Counts of the last full scan: the per-path table keeps only the first paths of each walk.
        store.set_meta("skipped_counts", json.dumps(dict(sorted(stats.skipped.items()))))
        store.set_meta("chunker_version", CHUNKER_VERSION)
    if not stats.cancelled:
        _embed_missing(index, stats, report, cancel, done, total, added, mark_ready=was_ready or backlog)
    if stats.chunks_removed:
        _bound_old_vectors(store, stats.chunks_removed)
    vectors = stats.chunks_embedded + stats.chunks_reused
    report(Progress("save", done, total, vectors, vectors))
    index.save_vectors()
    stats.seconds = round(time.perf_counter() - started, 3)
    report(Progress("done", done, total, vectors, vectors))
    return stats


def _bound_old_vectors(store, removed: int) -> None:
    """Count what updates removed (an upper bound on the vectors no chunk uses any more) and, once that passes
    the bound, drop the oldest of them beyond it: the exact count is a join over every vector, too dear for
    each save the watcher takes in."""
    estimate = int(store.get_meta(OLD_VECTORS_KEY) or 0) + removed
    if estimate > OLD_VECTORS_KEPT:
        live = store.conn.execute("SELECT count(DISTINCT hash) FROM chunks").fetchone()[0]
        estimate = store.drop_old_vectors(max(OLD_VECTORS_KEPT, live))
    store.set_meta(OLD_VECTORS_KEY, str(estimate))


def _still_skipped(todo: list[SourceFile], records: dict[str, FileRecord],
                   known: dict[str, tuple[str, int, int]], rules: IgnoreRules,
                   ) -> tuple[list[SourceFile], list[tuple[str, str, int, int]]]:
    """The files to read, and those a read skipped for what they hold that have not changed since (same size and
    mtime): they stay skipped unread. A bundle, a generated protobuf module, a binary or a key file is otherwise
    read again by every scan, as it has no record (200 minified bundles of 93 MB cost each `needle search` 0.27 s
    of refresh). A generated file a ``.needleignore`` now re-includes is read."""
    read: list[SourceFile] = []
    still: list[tuple[str, str, int, int]] = []
    for sf in todo:
        seen = known.get(sf.path) if sf.path not in records else None
        if (seen is not None and seen[1:] == (sf.size, sf.mtime_ns) and seen[0] in CONTENT_REASONS
                and not (seen[0] == generated.GENERATED and rules.needleignore_includes(sf.path))):
            still.append((sf.path, seen[0], sf.size, sf.mtime_ns))
        else:
            read.append(sf)
    return read, still


def _stat_changed(old: FileRecord | None, sf: SourceFile) -> bool:
    # The ctime too, as git compares it: a file renamed over another of the same size and mtime (two files a
    # checkout wrote in one tick), or rewritten and dated back, keeps both; its ctime is the kernel's, set anew.
    return (old is None or old.size != sf.size or old.mtime_ns != sf.mtime_ns
            or (old.ctime_ns is not None and old.ctime_ns != sf.ctime_ns))


def _stat_paths(index: IndexWriter, rules: IgnoreRules, paths: list[str], records: dict[str, FileRecord], max_bytes: int):
    """Resolve watcher paths: files are stat'ed; folders (created, moved or deleted whole) are walked."""
    candidates: dict[str, SourceFile] = {}
    removed: list[str] = []
    skipped: list[tuple[str, str]] = []
    full_walk = None
    for rel in dict.fromkeys(paths):
        full = index.root / rel
        if full.is_dir() and not full.is_symlink():
            # A folder created or moved in whole: a stat-only walk finds what it holds, ignore rules applied.
            full_walk = full_walk or walk(index.root, rules, max_file_bytes=max_bytes)
            prefix = rel + "/"
            inside = [f for f in full_walk.files if f.path.startswith(prefix)]
            candidates.update((f.path, f) for f in inside)
            skipped += [(p, r) for p, r in full_walk.skipped_paths if p.startswith(prefix)]
            present = {f.path for f in inside}
            removed += [p for p in records if p.startswith(prefix) and p not in present]
            if rel in records:
                removed.append(rel)  # a file replaced by a folder of the same name
            continue
        result = stat_one(index.root, rel, rules, max_bytes)
        if isinstance(result, str):
            prefix = rel + "/"
            gone = [p for p in records if p == rel or p.startswith(prefix)]  # a deleted folder, too
            removed += gone
            if result != "missing":
                skipped.append((rel, result))
        else:
            candidates[result.path] = result
            # A folder replaced by a file of the same name (watchdog may report only the file): what the index
            # holds under it is gone.
            prefix = rel + "/"
            removed += [p for p in records if p.startswith(prefix)]
    return list(candidates.values()), list(dict.fromkeys(removed)), skipped


def _commit_batch(index: IndexWriter, stats: UpdateStats, removed: list[str], files: list[FileRecord],
                  chunks: dict[str, list[Chunk]], touch: list[FileRecord], report: ProgressFn,
                  done: int, total: int) -> None:
    if not (removed or files or touch):
        report(Progress("index", done, total))
        return
    n_removed, n_added = index.commit(removed, files, chunks, touch)
    stats.chunks_removed += n_removed
    stats.chunks_added += n_added
    report(Progress("index", done, total))


def _embed_missing(index: IndexWriter, stats: UpdateStats, report: ProgressFn, cancel: threading.Event | None,
                   done: int, total: int, added: list[str] | None, mark_ready: bool = True) -> None:
    """The semantic half, behind the lexical one: embed chunks without vectors (those of ``added`` only, when
    given), then record "ready" (``mark_ready``: when no other chunk can be left without one)."""
    from codeneedle.indexer.embedding import embed_pending

    meter = RateMeter()

    def on_progress(embedded: int, to_embed: int, reused: int) -> None:
        meter.update(embedded - reused)  # the encoder's pace: thousands of reused vectors in a blink are not
        report(Progress("embed", done, total, embedded, to_embed, meter.rate, meter.eta(to_embed - embedded)))

    if index.store.get_meta(STATE_KEY) == "ready":
        return  # nothing was added and nothing was left pending: no need to look
    outcome = embed_pending(index, cancel=cancel, on_progress=on_progress, among=added)
    stats.chunks_embedded += outcome.embedded
    stats.chunks_reused += outcome.reused
    if outcome.finished and mark_ready:
        with index.store.transaction():
            mark_state(index.store, "ready")
    else:
        stats.cancelled = True
