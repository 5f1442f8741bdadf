"""Reliability (issue 7): bad input, injected faults and concurrent load; prints one table.

Sections, in order:

- bad input: the generated hostile corpus (``tests/badinput/make_corpus.py``) through ``Index.update``
  (files tried, crashes, skipped by reason, nothing read outside the root), and the same while a churn thread
  makes files vanish, change, turn binary, grow, or become links and FIFOs between listing and reading;
- SIGKILL: ``needle index`` (and ``needle watch`` during a batch) killed at many points (when the embedding
  cache reaches a threshold, or after a delay); after each kill and after the rerun: ``PRAGMA
  integrity_check``, no chunk without an embedding, FTS rows == chunk rows, every embedding stored before
  still there, nothing already embedded embedded again, the new code searchable;
- a corrupted usearch file (several kinds of damage) and a damaged SQLite file (truncated, garbage, a
  damaged page, empty): a clear message and a rebuild, nothing crashes;
- disk full (a size-limited tmpfs, when this user can mount one): a clear error, nothing stored lost;
- hostile patterns and files (issue 17): ReDoS globs through the search filter, a .gitignore and an exclude
  (against the regex matcher they replaced); a quadratic tree-sitter parse (bounded, other threads running);
  search-time reads of a FIFO and /dev/zero; hostile names in terminal output; minified code; random watcher
  operations (events alone, and after one reconcile rescan); the reconcile's cost on 10,000 files;
- concurrent load: 8 client threads searching one index for ``--load-seconds`` while a Watcher absorbs an
  edit every ~0.5 s: errors, searches done, p50/p99 latency, RSS at start/middle/end, lost updates.

Goals: crashes 0, corrupt indexes 0, embeddings lost 0, load errors 0, RSS flat.

    .venv/bin/python bench/reliability.py                 # full run (~15 min on 2 busy cores)
    .venv/bin/python bench/reliability.py --quick         # fewer kill points and variants, 15 s of load
    .venv/bin/python bench/reliability.py --only load --load-seconds 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from machine_load import LoadSampler

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests.badinput lives in the repository, not in the package

from codeneedle.indexer.index import Index  # noqa: E402
from codeneedle.indexer.watcher import Watcher  # noqa: E402
from tests.badinput.make_corpus import OpenRecorder, make_corpus, restore_permissions  # noqa: E402

NEEDLE = Path(sys.executable).with_name("needle")
# Kill points are counted in embeddings stored: with the machine's shared vectors (indexer/shared_cache.py) a round
# whose code an earlier round embedded would store them all in one commit, and no kill would land mid-embedding.
os.environ["NEEDLE_EMBEDDING_CACHE"] = "off"
DISK_KIB = 400  # room for the schema and some embeddings, not for the whole index
SECTIONS = ("badinput", "sigkill", "usearch", "sqlite", "diskfull", "load", "doors-a", "hostile")

FUNCTION = '''
def {verb}_{noun}_{tag}{i}(values, limit={limit}):
    """{doc}"""
    total = 0
    for v in values[:limit]:
        total += v * {i} + {k}
    return total / max(len(values), 1)
'''
VERBS = ("compute", "measure", "estimate", "rescale", "tabulate", "normalise", "project", "summarise")
NOUNS = ("mean", "spread", "score", "margin", "variance", "entropy", "latency", "yield", "drift", "ratio")


# -- repositories and index files ----------------------------------------------------------------------------
def module_text(i: int, tag: str = "") -> str:
    """Three distinct functions; ``tag`` makes a new version of the module (new names, new vectors)."""
    out = []
    for j in range(3):
        verb = VERBS[(i + j) % len(VERBS)]
        noun = NOUNS[(i * 3 + j) % len(NOUNS)]
        doc = f"{verb.capitalize()} the {noun} of values, variant {j} of module {i}{' ' + tag if tag else ''}."
        out.append(FUNCTION.format(verb=verb, noun=noun, tag=tag + "_" if tag else "", i=i, limit=j + i % 7 + 2,
                                   doc=doc, k=j))
    return "".join(out)


def function_name(i: int, j: int = 0, tag: str = "") -> str:
    return f"{VERBS[(i + j) % len(VERBS)]}_{NOUNS[(i * 3 + j) % len(NOUNS)]}_{tag + '_' if tag else ''}{i}"


def current_name(repo: Path, i: int) -> str:
    """The first function of module ``i`` as it is on disk now (earlier rounds may have renamed it)."""
    return re.search(r"def (\w+)", (repo / module_rel(i)).read_text()).group(1)


def module_rel(i: int) -> str:
    return f"src/part{i // 20}/mod_{i:03d}.py"


def make_repo(root: Path, n: int) -> Path:
    for i in range(n):
        p = root / module_rel(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(module_text(i))
    return root


def ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def embedding_hashes(db: Path) -> set[str]:
    """The embedding cache's keys; empty if there is no readable database (yet)."""
    if not db.exists():
        return set()
    try:
        conn = ro(db)
        try:
            return {f"{m}:{h}" for m, h in conn.execute("SELECT model, hash FROM embeddings")}
        finally:
            conn.close()
    except sqlite3.Error:
        return set()


def embedding_count(db: Path) -> int:
    try:
        conn = ro(db)
        try:
            return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def db_problems(db: Path) -> list[str]:
    """Why the database is not a consistent index (empty list: it is)."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(db, timeout=30)
        try:
            problems = []
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                problems.append(f"integrity_check: {check}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "chunks" not in tables:
                return problems  # killed before the schema was written: an empty file, opened cleanly next time
            orphans = conn.execute(
                "SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON e.hash = c.hash WHERE e.hash IS NULL"
            ).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} chunks without an embedding")
            fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            if fts != chunks:
                problems.append(f"fts rows {fts} != chunk rows {chunks}")
            stray = conn.execute("SELECT count(*) FROM chunks WHERE path NOT IN (SELECT path FROM files)").fetchone()[0]
            if stray:
                problems.append(f"{stray} chunks of files not in the files table")
            return problems
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [f"cannot read: {exc}"]


def run_needle(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(NEEDLE), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def crashed(proc: subprocess.CompletedProcess, ok_codes: tuple[int, ...] = (0,)) -> bool:
    """A crash: a traceback, death by a signal, or an exit status the command does not document."""
    return "Traceback" in proc.stderr or proc.returncode < 0 or proc.returncode not in ok_codes


def searchable(repo: Path, path: str, name: str, index_dir: Path | None = None) -> bool:
    """Whether the index (opened read-only-ish in this process) returns ``name`` in ``path``."""
    from codeneedle.indexer.settings import IndexSettings

    index = Index.open(repo, IndexSettings(index_dir=index_dir), create=False, notify=lambda m: None)
    try:
        return any(r.path == path and r.name == name for r in index.search(name, k=10, glob=path))
    finally:
        index.close()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the report ------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: what was tried and what went wrong."""

    area: str
    tried: int = 0
    crashes: int = 0
    corrupt: int = 0
    lost: int | None = 0  # None: not applicable (the fault itself destroys data)
    hostile: bool = False  # deliberate tampering, beyond the issue's accidental faults
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # details, printed under the table

    def fail(self, kind: str, detail: str) -> None:
        if kind == "crash":
            self.crashes += 1
        elif kind == "corrupt":
            self.corrupt += 1
        self.failures.append(f"{self.area}: {kind}: {detail}")


def say(msg: str) -> None:
    print(msg, flush=True)


# -- 1. bad input ----------------------------------------------------------------------------------------------
def bench_badinput(work: Path, args: argparse.Namespace) -> list[Row]:
    row = Row("bad-input corpus through Index.update", lost=None)
    manifest = make_corpus(work / "corpus")
    root = Path(manifest["root"])
    entries = manifest["entries"]
    row.tried = len(entries)
    try:
        index = Index.open(root, notify=lambda m: None)
        index.encoder  # noqa: B018 - the model and grammars live outside the root by design
        from codeneedle.indexer.chunker import chunk_source
        from codeneedle.indexer.languages import SUPPORTED_LANGUAGES

        for lang in SUPPORTED_LANGUAGES:
            chunk_source("x", b"x", lang)
        with OpenRecorder.recording() as recorder:
            stats = index.update()
        status = index.status()
        outside = [p for p in recorder.paths
                   if p == manifest["outside"] or p.startswith(manifest["outside"] + "/")]
        if outside:
            row.fail("crash", f"read outside the root: {outside[:3]}")
        expected = Counter(e["walk"] for e in entries.values() if e["walk"])
        expected.update(e["read"] for e in entries.values() if not e["walk"] and e.get("read"))
        short = {r: n for r, n in expected.items() if status.skipped.get(r, 0) < n}
        if short:
            row.failures.append(f"{row.area}: skip counts below the manifest's: {short} vs {status.skipped}")
        hits = index.search("def ok return 1", k=5)
        if not hits or hits[0].path != "ok.py":
            row.failures.append(f"{row.area}: search after indexing did not find ok.py first")
        again = index.update()
        problems = db_problems(index.index_dir / "index.db")
        if problems:
            row.fail("corrupt", "; ".join(problems))
        index.close()
        skipped = ", ".join(f"{r} {n}" for r, n in sorted(status.skipped.items()))
        row.notes.append(f"{status.files} indexed, skipped: {skipped}; {stats.seconds:.1f} s; "
                         f"re-run changed {again.files_changed}; outside reads {len(outside)}")
    except Exception as exc:  # noqa: BLE001 - a crash is what is being counted
        row.fail("crash", f"{type(exc).__name__}: {exc}")
    finally:
        restore_permissions(manifest)
    rows = [row]
    say(f"  bad input: {row.tried} inputs, {row.crashes} crashes; {'; '.join(row.notes)}")

    # Files that vanish or change between listing and reading, while updates run.
    churn = Row("files vanishing/changing mid-update", lost=None)
    repo = make_repo(work / "churn-repo", 40)
    index = Index.open(repo, notify=lambda m: None)
    index.update()
    stop = threading.Event()
    ops = Counter()

    def churner() -> None:
        rng = random.Random(7)
        d = repo / "churn"
        d.mkdir(exist_ok=True)
        while not stop.is_set():
            p = d / f"c{rng.randrange(30)}.py"
            op = rng.choice(("write", "delete", "rename", "binary", "grow", "symlink", "fifo", "dir", "chmod"))
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.exists() or p.is_symlink():
                    p.chmod(0o644) if not p.is_symlink() else None
                    p.unlink()
                if op == "write":
                    p.write_text(module_text(rng.randrange(1000), tag="churn"))
                elif op == "rename":
                    p.write_text(module_text(rng.randrange(1000)))
                    p.rename(d / f"c{rng.randrange(30)}.py")
                elif op == "binary":
                    p.write_bytes(os.urandom(4096))
                elif op == "grow":
                    with open(p, "wb") as fh:
                        fh.truncate(3 * 1024 * 1024)
                elif op == "symlink":
                    os.symlink(rng.choice(("/etc/passwd", "../src", "missing.py", str(p))), p)
                elif op == "fifo":
                    os.mkfifo(p)
                elif op == "dir":
                    (p / "inner").mkdir(parents=True)
                    (p / "inner" / "x.py").write_text("X = 1\n")
                elif op == "chmod":
                    p.write_text("Y = 2\n")
                    p.chmod(0)
                ops[op] += 1
            except OSError:
                ops["race"] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=churner, daemon=True)
    thread.start()
    updates = 0
    deadline = time.monotonic() + args.churn_seconds
    try:
        while time.monotonic() < deadline:
            try:
                index.update()
            except Exception as exc:  # noqa: BLE001
                churn.fail("crash", f"{type(exc).__name__}: {exc}")
            updates += 1
    finally:
        stop.set()
        thread.join()
    try:
        index.update()  # the churn stopped: the index must now agree with the tree
    except Exception as exc:  # noqa: BLE001
        churn.fail("crash", f"final update: {type(exc).__name__}: {exc}")
    problems = db_problems(index.index_dir / "index.db")
    if problems:
        churn.fail("corrupt", "; ".join(problems))
    store = index.reader()
    indexed = {p for (p,) in store.conn.execute("SELECT path FROM files WHERE path LIKE 'churn/%'")}
    on_disk = set()
    for folder, _dirs, names in os.walk(repo / "churn"):
        for name in names:
            p = Path(folder) / name
            if (p.is_file() and not p.is_symlink() and os.access(p, os.R_OK) and p.stat().st_size < 1 << 20
                    and b"\0" not in p.read_bytes()[:8000]):
                on_disk.add(p.relative_to(repo).as_posix())
    if indexed - on_disk:
        churn.fail("corrupt", f"index lists files that are gone or unreadable: {sorted(indexed - on_disk)[:5]}")
    if on_disk - indexed:
        churn.failures.append(f"{churn.area}: readable files not indexed: {sorted(on_disk - indexed)[:5]}")
    index.close()
    for p in (repo / "churn").rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    churn.tried = sum(ops.values())
    churn.notes.append(f"{updates} updates during {churn.tried} file operations "
                       f"({', '.join(f'{k} {v}' for k, v in sorted(ops.items()))})")
    say(f"  churn: {churn.notes[0]}; {churn.crashes} crashes")
    rows.append(churn)
    return rows


# -- 2. SIGKILL ------------------------------------------------------------------------------------------------
@dataclass
class KillPoint:
    label: str
    mode: str  # "index" | "watch"
    when: str  # "delay" | "embedded" | "committed"
    value: float = 0.0  # seconds for "delay"; fraction of the round's new embeddings for "embedded"
    cold: bool = False  # start from no index at all


def kill_points(quick: bool) -> list[KillPoint]:
    if quick:
        return [
            KillPoint("cold index, midway", "index", "embedded", 0.5, cold=True),
            KillPoint("at start (before Python is up)", "index", "delay", 0.0),
            KillPoint("while loading the model", "index", "delay", 1.0),
            KillPoint("after the first embedding batch", "index", "embedded", 0.01),
            KillPoint("all embedded, chunks committing", "index", "embedded", 1.0),
            KillPoint("watcher batch, midway", "watch", "embedded", 0.5),
        ]
    points = [KillPoint("cold index, 1/3", "index", "embedded", 1 / 3, cold=True),
              KillPoint("cold index, 2/3", "index", "embedded", 2 / 3, cold=True),
              KillPoint("at start (before Python is up)", "index", "delay", 0.0)]
    points += [KillPoint(f"after {d:.1f} s (imports, model, walk)", "index", "delay", d) for d in (0.3, 1.0, 2.0, 4.0)]
    points += [KillPoint(f"{f:.0%} of new embeddings stored", "index", "embedded", f)
               for f in (0.01, 0.25, 0.5, 0.75, 1.0)]
    points += [KillPoint("last batch committed, vectors saving", "index", "committed")]
    points += [KillPoint(f"watcher batch, {f:.0%} embedded", "watch", "embedded", f) for f in (0.01, 0.5, 1.0)]
    points += [KillPoint("watcher batch committed, vectors saving", "watch", "committed")]
    return points


def bench_sigkill(work: Path, args: argparse.Namespace) -> tuple[list[Row], Path]:
    repo = make_repo(work / "kill-repo", args.kill_files)
    db = repo / ".needle/index.db"
    env = {"NEEDLE_BATCH_FILES": "4"}
    rows = {"index": Row("SIGKILL during `needle index`"), "watch": Row("SIGKILL during a `needle watch` batch")}
    redone_total = 0
    dirty_round = 0
    vector_rebuilds = 0
    for point in kill_points(args.quick):
        row = rows[point.mode]
        row.tried += 1
        # Work for this round: a cold index, or a fresh version of some modules.
        if point.cold:
            shutil.rmtree(repo / ".needle", ignore_errors=True)
        first_round = not db.exists()
        before = embedding_hashes(db)
        if not first_round:
            dirty_round += 1
            tag = f"r{dirty_round}"
            changed = random.Random(dirty_round).sample(range(args.kill_files), args.kill_dirty)
        else:
            tag, changed = "", list(range(args.kill_files))
        expected_new = 3 * len(changed)
        target = len(before) + max(1, round(point.value * expected_new))
        hashes_of = {module_rel(i): hashlib.blake2b(module_text(i, tag).encode(), digest_size=16).hexdigest()
                     for i in changed}

        def committed(hashes_of: dict[str, str] = hashes_of) -> bool:
            try:
                conn = ro(db)
                try:
                    have = dict(conn.execute("SELECT path, hash FROM files"))
                finally:
                    conn.close()
            except sqlite3.Error:
                return False
            return all(have.get(p) == h for p, h in hashes_of.items())

        if point.mode == "index":
            if not first_round:
                for i in changed:
                    (repo / module_rel(i)).write_text(module_text(i, tag))
            proc = subprocess.Popen([str(NEEDLE), "index", "--quiet", str(repo)], env={**os.environ, **env},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        else:
            proc = subprocess.Popen([str(NEEDLE), "watch", str(repo)], env={**os.environ, **env},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if not wait_for_line(proc, "watching", 300):
                row.fail("crash", f"{point.label}: `needle watch` never started")
                proc.kill()
                proc.wait()
                continue
            for i in changed:
                (repo / module_rel(i)).write_text(module_text(i, tag))
        t0 = time.monotonic()
        deadline = t0 + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if point.when == "delay" and time.monotonic() - t0 >= point.value:
                break
            if point.when == "embedded" and embedding_count(db) >= target:
                break
            if point.when == "committed" and committed():
                break
            time.sleep(0.01)
        exited = proc.poll()
        if exited is None and time.monotonic() >= deadline:
            row.failures.append(f"{row.area}: {point.label}: the kill point was never reached in 300 s "
                                f"(embeddings {embedding_count(db)}, target {target})")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stderr = proc.stderr.read() if proc.stderr else ""
        if exited is not None and (exited != 0 or "Traceback" in stderr):
            row.fail("crash", f"{point.label}: exited {exited} before the kill: {stderr[-300:]}")
        at_kill = embedding_hashes(db)
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", f"{point.label}, right after the kill: {'; '.join(problems)}")
        lost = len(before - at_kill)

        rerun = run_needle("index", "--json", str(repo), env=env)
        stats = {}
        if crashed(rerun):
            row.fail("crash", f"{point.label}, rerun: rc {rerun.returncode}: {rerun.stderr[-300:]}")
        else:
            stats = json.loads(rerun.stdout)
        if "database" in rerun.stderr and "damaged" in rerun.stderr:
            row.fail("corrupt", f"{point.label}: the rerun found the database damaged: {rerun.stderr[-200:]}")
        if "rebuilt it from SQLite" in rerun.stderr:
            vector_rebuilds += 1
        final = embedding_hashes(db)
        lost += len(at_kill - final)
        row.lost = (row.lost or 0) + lost
        if lost:
            row.failures.append(f"{row.area}: {point.label}: {lost} embeddings lost")
        redone = len(at_kill) + stats.get("chunks_embedded", 0) - len(final)
        redone_total += max(redone, 0)
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", f"{point.label}, after the rerun: {'; '.join(problems)}")
        probe = changed[len(changed) // 2]
        found = searchable(repo, module_rel(probe), function_name(probe, 1, tag))
        if not found:
            row.fail("corrupt", f"{point.label}: {function_name(probe, 1, tag)} not searchable after the rerun")
        say(f"  kill [{point.mode}] {point.label}: embeddings {len(before)} -> {len(at_kill)} at the kill "
            f"(target {target}{', process had exited' if exited is not None else ''}) -> {len(final)} after the "
            f"rerun (embedded {stats.get('chunks_embedded')}); lost {lost}, redone {redone}, "
            f"problems {len(row.failures)}, searchable {found}")
    for row in rows.values():
        row.notes.append("integrity, orphans, FTS, embeddings kept, searchable: after each kill and rerun")
    rows["index"].notes.append(f"embeddings redone by the reruns: {redone_total}; reruns that rebuilt the ANN "
                               f"file from SQLite (no encoder): {vector_rebuilds}")
    for row in rows.values():
        never = sum("never reached" in f for f in row.failures)
        if never:
            row.notes.append(f"kill points never reached: {never}")
    return list(rows.values()), repo


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> bool:
    """Read the process's stderr until a line holds ``needle`` (in a thread: readline blocks)."""
    seen = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if needle in line:
                seen.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    return seen.wait(timeout)


# -- 3. a corrupted usearch file --------------------------------------------------------------------------------
def bench_usearch(repo: Path, args: argparse.Namespace) -> list[Row]:
    accidental = Row("corrupted usearch file")
    hostile = Row("usearch file tampered, checksum forged", hostile=True)
    vec = repo / ".needle/vectors.usearch"
    side = vec.with_name(vec.name + ".json")
    db = repo / ".needle/index.db"

    def truncate() -> None:
        vec.write_bytes(vec.read_bytes()[:100])

    def random_same_size() -> None:
        vec.write_bytes(os.urandom(vec.stat().st_size))

    def flip_bytes() -> None:
        data = bytearray(vec.read_bytes())
        for pos in random.Random(3).sample(range(len(data)), 64):
            data[pos] ^= 0xFF
        vec.write_bytes(bytes(data))

    def forge(data: bytearray) -> None:
        """Hostile: write damaged bytes and rewrite the sidecar's checksum to match them."""
        vec.write_bytes(bytes(data))
        meta = json.loads(side.read_text())
        meta["digest"] = hashlib.blake2b(bytes(data), digest_size=16).hexdigest()
        side.write_text(json.dumps(meta))

    def bytes_changed_forged(seed: int) -> Callable[[], None]:
        def damage() -> None:
            data = bytearray(vec.read_bytes())
            rng = random.Random(seed)
            for pos in rng.sample(range(64, len(data)), 256):
                data[pos] = rng.randrange(256)
            forge(data)
        return damage

    def header_forged(seed: int) -> Callable[[], None]:
        def damage() -> None:
            data = bytearray(vec.read_bytes())
            data[:64] = random.Random(seed).randbytes(64)
            forge(data)
        return damage

    def delete_file() -> None:
        vec.unlink()

    def garbage_sidecar() -> None:
        side.write_text("{not json")

    variants = [(accidental, "truncated to 100 bytes", truncate),
                (accidental, "random bytes, same size", random_same_size),
                (accidental, "64 bytes flipped", flip_bytes), (accidental, "deleted", delete_file),
                (accidental, "sidecar not JSON", garbage_sidecar)]
    variants += [(hostile, f"256 bytes changed (seed {k})", bytes_changed_forged(k)) for k in range(4)]
    variants += [(hostile, f"garbage header (seed {k})", header_forged(k)) for k in range(2)]
    if args.quick:
        variants = variants[:2] + variants[5:7]
    probe = 7
    name = current_name(repo, probe)
    outcomes: dict[str, list[str]] = {accidental.area: [], hostile.area: []}
    for row, label, damage in variants:
        row.tried += 1
        if not vec.exists() or not side.exists():
            run_needle("index", "--json", str(repo))
        before = embedding_hashes(db)
        damage()
        proc = run_needle("search", "--path", str(repo), "--json", "--no-refresh", "-k", "10", name)
        if crashed(proc):
            row.fail("crash", f"{label}: rc {proc.returncode}: {proc.stderr[-300:]}")
            outcomes[row.area].append(f"{label}: CRASH rc {proc.returncode}")
            say(f"  usearch {label}: CRASH rc {proc.returncode}")
            run_needle("index", "--json", str(repo))  # a writer run replaces the damaged file
            continue
        results = json.loads(proc.stdout)["results"]
        ok = any(r["name"] == name for r in results)
        if not ok:
            row.fail("corrupt", f"{label}: search for {name} did not list it: {[r['name'] for r in results[:3]]}")
        rebuilt = "rebuilt" in proc.stderr
        after = embedding_hashes(db)
        lost = len(before - after)
        row.lost = (row.lost or 0) + lost
        again = run_needle("index", "--json", str(repo))
        embedded = json.loads(again.stdout)["chunks_embedded"] if not crashed(again) else None
        if crashed(again):
            row.fail("crash", f"{label}: the index run afterwards: {again.stderr[-300:]}")
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", f"{label}: {'; '.join(problems)}")
        outcomes[row.area].append(f"{label}: {'rebuilt, said so' if rebuilt else 'no message'}, found {ok}, "
                                  f"re-embedded {embedded}")
        say(f"  usearch {label}: rc {proc.returncode}, rebuilt message {rebuilt}, found {ok}, lost {lost}, "
            f"re-embedded afterwards {embedded}")
    for row in (accidental, hostile):
        row.notes.append("; ".join(outcomes[row.area]))
    return [accidental, hostile]


# -- 4. a damaged SQLite file ------------------------------------------------------------------------------------
def bench_sqlite(repo: Path, args: argparse.Namespace) -> Row:
    row = Row("damaged SQLite file")
    row.lost = None
    d = repo / ".needle"
    db = d / "index.db"
    files_expected = args.kill_files

    def drop_wal() -> None:
        for p in d.glob("index.db-*"):
            p.unlink()

    def third() -> None:
        drop_wal()
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])

    def two_thirds() -> None:
        drop_wal()
        db.write_bytes(db.read_bytes()[: db.stat().st_size * 2 // 3])

    def garbage() -> None:
        drop_wal()
        db.write_bytes(os.urandom(8192))

    def page_damage() -> None:
        drop_wal()
        data = bytearray(db.read_bytes())
        page = 4096
        for n in random.Random(5).sample(range(2, len(data) // page), min(3, len(data) // page - 2)):
            data[n * page: n * page + 512] = os.urandom(512)
        db.write_bytes(bytes(data))

    def empty() -> None:
        drop_wal()
        db.write_bytes(b"")

    variants = [("truncated to 1/3", third), ("truncated to 2/3", two_thirds), ("random garbage", garbage),
                ("3 pages overwritten", page_damage), ("emptied (0 bytes)", empty)]
    if args.quick:
        variants = variants[:1] + variants[3:4]
    outcomes = []
    for label, damage in variants:
        row.tried += 1
        run_needle("index", "--json", str(repo))  # complete, settled index to damage
        before = embedding_count(db)
        for p in d.glob("index.db.corrupt-*"):
            p.unlink()
        damage()
        proc = run_needle("index", "--json", str(repo))
        if crashed(proc):
            row.fail("crash", f"{label}: rc {proc.returncode}: {proc.stderr[-300:]}")
            outcomes.append(f"{label}: CRASH")
            continue
        stats = json.loads(proc.stdout)
        message = re.search(r"\((\d+)\s+embeddings\s+salvaged\)", proc.stderr)
        salvaged = int(message.group(1)) if message else None
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", f"{label}: {'; '.join(problems)}")
        status = json.loads(run_needle("status", "--json", str(repo)).stdout)
        if status["files"] != files_expected:
            row.fail("corrupt", f"{label}: {status['files']} files after the rebuild, expected {files_expected}")
        probe = 11
        found = searchable(repo, module_rel(probe), current_name(repo, probe))
        if not found:
            row.fail("corrupt", f"{label}: not searchable after the rebuild")
        said = "damaged" in proc.stderr
        outcomes.append(f"{label}: {'message' if said else 'no message'}, salvaged "
                        f"{salvaged if salvaged is not None else '-'}/{before}, re-embedded {stats['chunks_embedded']}")
        say(f"  sqlite {label}: rc {proc.returncode}, message {said}, salvaged {salvaged}/{before}, "
            f"re-embedded {stats['chunks_embedded']}, problems {problems}, searchable {found}")
    row.notes.append("; ".join(outcomes))
    return row


# -- 5. disk full --------------------------------------------------------------------------------------------------
def bench_diskfull(repo: Path, work: Path) -> Row:
    row = Row(f"disk full ({DISK_KIB} KiB tmpfs index folder)")
    mount = work / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_KIB}k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        row.notes.append("skipped: cannot mount a size-limited tmpfs here (needs root)")
        row.lost = None
        return row
    try:
        row.tried = 1
        index_dir = mount / "index"
        db = index_dir / "index.db"
        proc = run_needle("index", "--json", "--index-dir", str(index_dir), str(repo))
        if crashed(proc, (0, 1)):
            row.fail("crash", f"rc {proc.returncode}: {proc.stderr[-300:]}")
        said = "disk full" in proc.stderr
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", "; ".join(problems))
        kept = embedding_hashes(db)
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        again = run_needle("index", "--json", "--index-dir", str(index_dir), str(repo))
        if crashed(again):
            row.fail("crash", f"after freeing space: {again.stderr[-300:]}")
            return row
        final = embedding_hashes(db)
        embedded = json.loads(again.stdout)["chunks_embedded"]
        row.lost = len(kept - final)
        redone = len(kept) + embedded - len(final)
        problems = db_problems(db)
        if problems:
            row.fail("corrupt", "after freeing space: " + "; ".join(problems))
        found = searchable(repo, module_rel(5), current_name(repo, 5), index_dir=index_dir)
        row.notes.append(f"first run rc {proc.returncode}, {'said disk full' if said else 'NO disk-full message'}; "
                         f"{len(kept)} embeddings kept, {embedded} embedded after freeing space, redone {redone}, "
                         f"searchable {found}")
        say(f"  disk full: {row.notes[-1]}")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    return row


# -- 6. concurrent load ----------------------------------------------------------------------------------------------
def bench_load(repo: Path, args: argparse.Namespace) -> tuple[Row, dict]:
    row = Row(f"concurrent load: {args.clients} search threads + watcher")
    row.lost = None
    index = Index.open(repo, notify=lambda m: None)
    index.update()
    n_files = index.status().files
    watch_errors: list[Exception] = []
    watcher = Watcher(index, on_error=watch_errors.append)
    watcher.start()
    queries = [("mean of values", {}), ("estimate the entropy", {}), ("rescale latency values", {"lang": "python"}),
               ("tabulate the margin of values variant 2", {}), ("normalise ratio", {"glob": "src/part1/**"}),
               ("sum of values times limit", {}), ("project drift", {"lang": "py"}),
               ("spread of the values of module 3", {"glob": "src/**/*.py"})]
    queries += [(function_name(i, i % 3), {}) for i in range(0, args.kill_files, 3)]
    for q, kw in queries[:4]:
        index.search(q, k=10, **kw)  # warm: model, vectors, readers
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors: list[str] = []
    rss: list[tuple[float, float]] = []
    stop = threading.Event()
    t_start = time.perf_counter()

    def client(slot: int) -> None:
        rng = random.Random(slot)
        while not stop.is_set():
            q, kw = rng.choice(queries)
            t0 = time.perf_counter()
            try:
                results = index.search(q, k=10, **kw)
                if not results:
                    errors.append(f"no results for {q!r} {kw}")
            except Exception as exc:  # noqa: BLE001 - counted, never fatal
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies[slot].append(time.perf_counter() - t0)

    edits: dict[str, str] = {}
    edit_count = 0

    def writer() -> None:
        nonlocal edit_count
        rng = random.Random(99)
        while not stop.is_set():
            i = rng.randrange(args.kill_files)
            tag = f"load{edit_count}"
            (repo / module_rel(i)).write_text(module_text(i, tag))
            edits[module_rel(i)] = function_name(i, 0, tag)
            edit_count += 1
            stop.wait(0.5)

    def sampler() -> None:
        while not stop.is_set():
            rss.append((time.perf_counter() - t_start, rss_mb()))
            stop.wait(1.0)

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in range(args.clients)]
    threads += [threading.Thread(target=writer, daemon=True), threading.Thread(target=sampler, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(args.load_seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - t_start
    watcher.wait_idle(300)
    # Lost updates: the last edit of every edited file must be searchable now.
    missing = [p for p, name in edits.items()
               if not any(r.path == p and r.name == name for r in index.search(name, k=10, glob=p))]
    watcher.stop()
    problems = db_problems(index.index_dir / "index.db")
    batches = watcher.batches
    index.close()

    all_lat = sorted(x for lane in latencies for x in lane)
    row.tried = len(all_lat)
    row.notes.append(f"{len(errors)} search errors, {len(watch_errors)} watcher errors, {len(missing)} lost edits")
    for e in errors[:5]:
        row.failures.append(f"{row.area}: search error: {e}")
    for e in watch_errors[:5]:
        row.failures.append(f"{row.area}: watcher error: {e!r}")
    if problems:
        row.fail("corrupt", "; ".join(problems))
    if missing:
        row.failures.append(f"{row.area}: {len(missing)} edits never became searchable: {missing[:5]}")
    third = len(rss) // 2
    figures = {
        "searches": len(all_lat),
        "seconds": elapsed,
        "qps": len(all_lat) / elapsed,
        "errors": len(errors),
        "watch_errors": len(watch_errors),
        "p50": statistics.median(all_lat) if all_lat else float("nan"),
        "p99": all_lat[min(len(all_lat) - 1, int(len(all_lat) * 0.99))] if all_lat else float("nan"),
        "max": all_lat[-1] if all_lat else float("nan"),
        "rss": (rss[0][1], rss[third][1], rss[-1][1], max(r for _, r in rss)) if rss else (0, 0, 0, 0),
        "rss_series": [r for _, r in rss[:: max(1, len(rss) // 12)]],
        "edits": edit_count,
        "edited_files": len(edits),
        "missing": len(missing),
        "batches": batches,
        "files": n_files,
    }
    say(f"  load: {figures['searches']} searches in {elapsed:.0f} s, {len(errors)} errors, p50 "
        f"{figures['p50'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms; {edit_count} edits in {batches} "
        f"batches, {len(missing)} not searchable; RSS {figures['rss']}")
    return row, figures


# -- 7. issue 17a: data loss, confinement, memory, MCP protocol ---------------------------------------------------------
# Each check is an attack (hostile input) or a fault (the disk, another process); "held" means the documented
# behaviour: a one-line error or a refusal, nothing outside the root read or written, nothing lost or moved.
def _held(row: Row, name: str, ok: bool, detail: str = "") -> None:
    row.tried += 1
    if not ok:
        row.failures.append(f"{row.area}: NOT held: {name} {detail}".rstrip())


def _summary(row: Row, word: str) -> None:
    held = row.tried - len(row.failures)
    row.notes.insert(0, f"{held}/{row.tried} {word}")
    say(f"  {row.area}: {row.notes[0]}")


def _one_line(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.count("needle: error:") == 1


def bench_doors_data(work: Path) -> Row:
    """Faults: full disk, read-only folder, another schema, first open on a full disk, .needle deleted or truncated."""
    from codeneedle.errors import IndexLostError

    row = Row("17a data loss: faults survived", hostile=False)
    repo = make_repo(work / "doors-repo", 12)
    disk = work / "doors-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    lost_embeddings = 0
    if mounted:
        try:
            ix = disk / "ix"
            run_needle("index", "--json", "--index-dir", str(ix), str(repo))
            before = embedding_hashes(ix / "index.db")
            filler = disk / "filler"
            with open(filler, "wb", buffering=0) as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                except OSError:
                    pass
            for cmd in ("status", "index"):
                proc = run_needle(cmd, "--index-dir", str(ix), str(repo))
                _held(row, f"full disk: needle {cmd}", proc.returncode == 0 or (_one_line(proc) and "damaged" not in proc.stderr),
                      proc.stderr[-200:])
            _held(row, "full disk: nothing moved aside", not list(ix.glob("*.corrupt-*")) and (ix / "vectors.usearch").exists())
            filler.unlink()
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=False)
            proc = run_needle("index", "--index-dir", str(ix), str(repo))
            _held(row, "read-only folder: needle index", _one_line(proc) and "read-only" in proc.stderr, proc.stderr[-200:])
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False)
            again = run_needle("index", "--json", "--index-dir", str(ix), str(repo))
            redone = json.loads(again.stdout)["chunks_embedded"] if again.returncode == 0 else -1
            lost_embeddings += len(before - embedding_hashes(ix / "index.db"))
            _held(row, "after the faults nothing is embedded again", redone == 0, f"re-embedded {redone}")
            with open(filler, "wb", buffering=0) as fh:
                try:
                    while True:
                        fh.write(b"\0" * 4096)
                except OSError:
                    pass
            fresh = disk / "fresh"
            proc = run_needle("index", "--index-dir", str(fresh), str(repo))
            _held(row, "first open on a full disk", _one_line(proc) and not (fresh / ".gitignore").exists(), proc.stderr[-200:])
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    else:
        row.notes.append("full/read-only disk skipped: cannot mount a tmpfs (needs root)")
    run_needle("index", "--json", str(repo))
    db = repo / ".needle" / "index.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    proc = run_needle("index", str(repo))
    _held(row, "another schema", _one_line(proc) and "schema 99" in proc.stderr and not list(db.parent.glob("*.corrupt-*")))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = embedding_hashes(db)
    # .needle deleted, then truncated, under an open writer (what the language server holds).
    index = Index.open(repo, notify=lambda m: None)
    try:
        index.update()
        shutil.rmtree(repo / ".needle")
        try:
            answered = index.search("mean of values")
            _held(row, "deleted .needle: search says so", False, f"answered {len(answered)} results from a ghost")
        except IndexLostError:
            _held(row, "deleted .needle: search says so", True)
        stats = index.update()
        _held(row, "deleted .needle: rebuilt", db.exists() and stats.files_changed == 12 and bool(index.search("mean of values")))
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
        try:
            index.search("mean of values")
            _held(row, "truncated index.db: search says so", False)
        except IndexLostError:
            _held(row, "truncated index.db: search says so", True)
        index.update()
        _held(row, "truncated index.db: rebuilt, no commit into it", not db_problems(db) and bool(index.search("mean of values")))
    finally:
        index.close()
    row.lost = lost_embeddings
    row.notes.append(f"embeddings lost under disk faults {lost_embeddings}; after delete+truncate "
                     f"{len(before)} -> {len(embedding_hashes(db))} cached (the deleted ones are re-embedded)")
    _summary(row, "faults survived")
    return row


def bench_doors_confinement(work: Path) -> Row:
    """Attacks: MCP paths outside the root, a parent folder swapped for a link mid-index, hostile index folders,
    secrets by content."""
    from codeneedle.indexer.ignore import IgnoreRules
    from codeneedle.indexer.walker import read_source, walk

    row = Row("17a confinement: attacks held", hostile=True, lost=None)
    repo = make_repo(work / "conf-repo", 4)
    outside = work / "conf-outside"
    (outside / ".ssh").mkdir(parents=True)
    (outside / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")
    answers = _mcp_raw(repo, [_mcp_call(i, "search", {"query": "key", "path": p}) for i, p in
                              enumerate([str(outside), str(outside / ".ssh"), "../conf-outside", "~", "/etc"], 10)])
    for a in answers:
        _held(row, "MCP path outside the root", a.get("result", {}).get("isError") is True
              and "not a folder this server serves" in json.dumps(a))
    _held(row, "MCP wrote nothing outside", not (outside / ".needle").exists() and not (outside / ".ssh" / ".needle").exists())
    # 700 files under sub/; after the walk, sub/ becomes a link to a same-shaped folder outside (issue: 188 read).
    swap = work / "swap-repo"
    for d in (swap / "sub", outside / "sub"):
        d.mkdir(parents=True)
        for i in range(700):
            (d / f"f{i}.py").write_text(f"x = {i}\n" if d.is_relative_to(swap) else f"OUTSIDE = {i}\n")
    files = walk(swap, IgnoreRules(swap)).files
    shutil.rmtree(swap / "sub")
    (swap / "sub").symlink_to(outside / "sub", target_is_directory=True)
    leaked = sum(1 for sf in files if isinstance(data := read_source(sf), bytes) and b"OUTSIDE" in data)
    _held(row, "parent folder swapped for a link", leaked == 0, f"{leaked} of {len(files)} files read from outside")
    row.notes.append(f"swap mid-index: {leaked}/{len(files)} files read outside (issue: 188/700)")
    other = work / "other-db"
    other.mkdir()
    conn = sqlite3.connect(other / "index.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    original = (other / "index.db").read_bytes()
    for target, what in [(repo, "the root"), (repo.parent, "a parent"), (outside / ".ssh", "a folder of keys"),
                         (other, "another program's index.db")]:
        proc = run_needle("index", "--index-dir", str(target), str(repo))
        _held(row, f"--index-dir {what}", _one_line(proc) and not (target / ".gitignore").exists(), proc.stderr[-200:])
    _held(row, "foreign index.db untouched", (other / "index.db").read_bytes() == original
          and sorted(p.name for p in other.iterdir()) == ["index.db"])
    names = ["deploy_key", "ssh_host_rsa_key", "kubeconfig", "token.json", "firebase-adminsdk-x.json",
             "credentials.yml", "htpasswd", "netrc", "client.ovpn"]
    for name in names:
        (repo / name).write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n")
    token = "AKIA" + "ABCDEFGHIJKLMNOP"
    (repo / "src" / "cloud.py").write_text(f"def upload_to_bucket_now():\n    key = '{token}'\n    return key\n")
    run_needle("index", "--json", str(repo))
    conn = sqlite3.connect(repo / ".needle" / "index.db")
    indexed = {r[0] for r in conn.execute("SELECT path FROM files")}
    texts = "\n".join(r[0] for r in conn.execute("SELECT text FROM chunks"))
    conn.close()
    for name in names:
        _held(row, f"private key in {name}", name not in indexed)
    found = run_needle("search", "--json", "--path", str(repo), "upload_to_bucket_now")
    _held(row, "AWS key in a .py file redacted", token not in texts and token not in found.stdout)
    _summary(row, "attacks held")
    return row


def _mcp_call(msg_id: int, tool: str, arguments: dict) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}})


def _mcp_raw(root: Path, lines: list[str], pid_box: list | None = None) -> list[dict]:
    """Send raw lines to `needle mcp` after the handshake; one answer per line (None when none came)."""
    proc = subprocess.Popen([str(NEEDLE), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "NEEDLE_ROOT": str(root)})
    if pid_box is not None:
        pid_box.append(proc.pid)
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    answers = []
    try:
        proc.stdin.write((json.dumps(init) + "\n").encode())
        proc.stdin.flush()
        proc.stdout.readline()
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        for line in lines:
            proc.stdin.write(line.encode("utf-8", "surrogatepass") + b"\n")
            proc.stdin.flush()
            out = proc.stdout.readline()
            answers.append(json.loads(out) if out else {})
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return answers


def _proc_status(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def bench_doors_memory(work: Path) -> tuple[Row, list[str]]:
    """Memory attacks: 128 results from 1 MiB files, a 60 MB LSP message, a 10 MB MCP query; peak RSS each."""
    row = Row("17a memory + MCP protocol: attacks held", hostile=True, lost=None)
    figures: list[str] = []
    big = work / "mem-files"
    big.mkdir()
    for i in range(128):
        (big / f"f{i}.txt").write_bytes(b"x\n" * (1 << 19))  # 1 MiB of one-character lines
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from codeneedle.indexer.search import SearchResult\n"
        "from codeneedle.server.results import result_range\n"
        "import numpy\n"
        "def rss(key='VmRSS'):\n"
        "    return next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith(key)) / 1024\n"
        "root = Path(sys.argv[1]); mode = sys.argv[2]; base = rss()\n"
        "if mode == 'needle':\n"
        "    for i in range(128):\n"
        "        result_range(root, SearchResult(f'f{i}.txt', 400000, 400001, 'n', 'text', 'text', 1.0, ''), 'utf-16')\n"
        "else:  # the former cache: every file kept as a list of its lines\n"
        "    keep = [[ln.rstrip(b'\\r') for ln in (root / f'f{i}.txt').read_bytes().split(b'\\n')] for i in range(128)]\n"
        "print(rss('VmHWM') - base)\n")  # VmHWM, not ru_maxrss: that one keeps the parent's peak across exec
    growth = {}
    for mode in ("needle", "lines"):
        proc = subprocess.run([sys.executable, "-c", script, str(big), mode], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=600)
        growth[mode] = float(proc.stdout.strip() or "nan")
    _held(row, "128 results from 1 MiB files: bounded cache", growth["needle"] < 100, f"{growth['needle']:.0f} MB")
    figures.append(f"128 results from 1 MiB files: peak RSS growth {growth['needle']:.0f} MB vs former line-list "
                   f"cache {growth['lines']:.0f} MB (x{growth['needle'] / max(growth['lines'], 1e-9):.3f})")
    from tests.lsp.rawclient import RawClient

    c = RawClient()
    try:
        c.initialize(None)
        idle = _proc_status(c.proc.pid)
        c.send_raw(b'{"jsonrpc":"2.0","id":"big","method":"workspace/symbol","params":{"query":"' + b"a" * (60 << 20) + b'"}}')
        answer = c.request("workspace/symbol", {"query": "x"}, timeout=120)
        after = _proc_status(c.proc.pid)
    finally:
        c.close()
    _held(row, "60 MB LSP message refused, server alive", "result" in answer and after["VmHWM"] - idle["VmRSS"] < 200,
          f"peak +{after['VmHWM'] - idle['VmRSS']:.0f} MB")
    figures.append(f"60 MB LSP message: server RSS idle {idle['VmRSS']:.0f} MB, peak {after['VmHWM']:.0f} MB, "
                   f"after {after['VmRSS']:.0f} MB (issue: peak 2.9 GB, kept 2.77 GB)")
    repo = make_repo(work / "mem-repo", 2)
    t0 = time.perf_counter()
    pid: list[int] = []
    answers = _mcp_raw(repo, [
        _mcp_call(20, "search", {"query": "x" * 10_000_000}),
        "{not json", "[1]", '"text"',
        _mcp_call(21, "search", {"query": "\ud800"}),
        _mcp_call(22, "search", {"query": "x", "glob": "\udfff"}),
        _mcp_call(23, "similar", {"path": "a\ud800", "line": 1}),
        _mcp_call(24, "search", {"query": "x", "glob": "src\\*.py"}),
        _mcp_call(25, "similar", {"path": "a\0b", "line": 1}),
        _mcp_call(26, "search", {"query": "x", "path": "a\0b"}),
    ], pid)
    seconds = time.perf_counter() - t0
    expect = ["too long", "Parse error", "JSON object", "JSON object", "lone surrogate", "lone surrogate",
              "lone surrogate", "backslash", "NUL", "NUL"]
    for answer, words in zip(answers, expect, strict=True):
        _held(row, f"MCP bad request answered ({words})", words in json.dumps(answer), json.dumps(answer)[:200])
    figures.append(f"10 MB MCP query and 9 malformed MCP requests: all answered in {seconds:.1f} s "
                   f"(issue: > 300 s and 2.4 GB for the query alone)")
    row.notes.extend(figures)
    _summary(row, "attacks held")
    return row, figures


# -- 8. hostile patterns and files (issue 17, second half) ------------------------------------------------------
HOSTILE_AREAS = ("globs:", "quadratic parse", "search-time reads", "names in terminal", "watcher:", "reconcile")
REDOS_PATTERNS = ["*?" * 12 + "Q", "*a" * 16 + "b", "**/" * 20 + "*?" * 10 + "Z", "a*" * 20 + "/x", "[ab]*" * 14 + "c"]


def _pathspec_hangs(pattern: str, path: str, limit: float) -> bool:
    """Whether the regex-based matcher we replaced (pathspec) fails to answer within ``limit`` seconds."""
    code = "import pathspec, sys; pathspec.GitIgnoreSpec.from_lines([sys.argv[1]]).match_file(sys.argv[2])"
    try:
        subprocess.run([sys.executable, "-c", code, pattern, path], timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return True
    return False


def bench_hostile(work: Path, args: argparse.Namespace) -> list[Row]:
    """Pathological globs, quadratic parses, FIFOs at search time, names, minified code, random watcher runs."""
    rows = [_hostile_globs(work), _hostile_parse(), _hostile_reads(work), _hostile_names()]
    rows.append(_hostile_watcher(work, 10 if args.quick else 40))
    rows.append(_hostile_reconcile(work, 2_000 if args.quick else 10_000))
    return rows


def _hostile_globs(work: Path) -> Row:
    from codeneedle.indexer.ignore import IgnoreRules, glob_match
    from codeneedle.indexer.walker import walk

    # Every pattern in a search glob, a .gitignore and an exclude, against a long name holding the literal.
    row = Row("globs: ReDoS patterns x (search, .gitignore, exclude)")
    path = "src/" + "a" * 30 + "Q" + "b" * 9 + ".py"
    tree = work / "redos"
    (tree / "src").mkdir(parents=True)
    (tree / path).write_text("x = 1\n")
    ours, baseline_hung = [], 0
    for pattern in REDOS_PATTERNS:
        started = time.perf_counter()
        glob_match(pattern, path)
        (tree / ".gitignore").write_text(pattern + "\n")
        walk(tree, IgnoreRules(tree, parent_ignores=False))
        walk(tree, IgnoreRules(tree, extra_patterns=[pattern], parent_ignores=False))
        ours.append(time.perf_counter() - started)
        row.tried += 3
        if ours[-1] > 5:
            row.fail("crash", f"{pattern!r} took {ours[-1]:.1f} s")
        baseline_hung += _pathspec_hangs(pattern, path, 2.0)
    row.notes.append(f"held {row.tried - row.crashes}/{row.tried}; ours max {max(ours) * 1000:.0f} ms per pattern "
                     f"(3 doors); regex baseline did not answer in 2 s for {baseline_hung}/{len(REDOS_PATTERNS)}")
    return row


def _hostile_parse() -> Row:
    from codeneedle.indexer.chunker import chunk_source
    from codeneedle.indexer.languages import get_parser

    # tree-sitter-python is quadratic on a run of comment lines; a bytes parse holds the GIL throughout.
    row = Row("quadratic parse (30k comment lines)", tried=1)
    data = b"def first():\n    pass\n" + b"# a comment line\n" * 30_000
    ticks, stop = [0], threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    started = time.perf_counter()
    chunks = chunk_source("slow.py", data, "python")
    took = time.perf_counter() - started
    stop.set()
    ticker.join()
    small = b"def first():\n    pass\n" + b"# a comment line\n" * 4_000
    started = time.perf_counter()
    get_parser("python").parse(small)  # the unbounded parse, 4k lines (30k would take minutes)
    baseline = time.perf_counter() - started
    if took > 30 or not chunks:
        row.fail("crash", f"chunking took {took:.1f} s, {len(chunks)} chunks")
    row.notes.append(f"chunked in {took:.1f} s ({len(chunks)} windows); another thread ran {ticks[0]} of "
                     f"~{took / 0.01:.0f} ticks; unbounded parse of 4k lines alone {baseline:.1f} s")
    return row


def _hostile_reads(work: Path) -> Row:
    from codeneedle.server.results import read_regular_file

    row = Row("search-time reads: FIFO, /dev/zero, file")
    fifo = work / "fifo.py"
    os.mkfifo(fifo)
    regular = work / "regular.py"
    regular.write_text("x = 1\n")
    for target, want in ((str(fifo), None), ("/dev/zero", None), (str(regular), b"x = 1\n")):
        started = time.perf_counter()
        got = read_regular_file(target, 16 << 20)
        row.tried += 1
        if got != want or time.perf_counter() - started > 1:
            row.fail("crash", f"{target}: {got!r:.40}")
    row.notes.append(f"held {row.tried - row.crashes}/{row.tried}, none blocked")
    return row


def _hostile_names() -> Row:
    import base64

    from codeneedle.console import escape_text
    from codeneedle.indexer.walker import looks_minified

    row = Row("names in terminal output; minified code")
    for name in ["a[/]b.py", "x\nforged.py:1: f", "esc\x1b[2J.py", "bell\x07.py", "[bold]x[/].py", "rtl\u202e.py"]:
        row.tried += 1
        if any(not (c.isprintable() or c == " ") for c in escape_text(name)):
            row.fail("crash", f"{name!r} printed raw")
    bundles = [b"".join(b"function f%d(a,b){return a*b+%d};" % (i, i) for i in range(20_000)),
               json.dumps([{"id": i, "name": f"item{i}"} for i in range(9000)], separators=(",", ":")).encode(),
               b"var x='" + base64.b64encode(random.Random(1).randbytes(40_000)) + b"';"]
    for bundle in bundles:
        row.tried += 1
        if not looks_minified(bundle):
            row.fail("crash", f"minified code not detected: {bundle[:30]!r}")
    own = [p for p in (REPO_ROOT / "codeneedle").rglob("*.py") if looks_minified(p.read_bytes())]
    row.notes.append(f"held {row.tried - row.crashes}/{row.tried}; false positives on our own sources: {len(own)}")
    return row


def _hostile_watcher(work: Path, seeds: int) -> Row:
    from codeneedle.indexer.settings import IndexSettings
    from tests.test_watcher_random import OPERATIONS, Tree, snapshot

    # tests/test_watcher_random.py for more seeds: the events alone, then after one reconcile rescan.
    row = Row(f"watcher: {seeds} seeds x {OPERATIONS} random operations", tried=seeds)
    events_wrong = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        root, outside = work / f"w{seed}" / "repo", work / f"w{seed}" / "out"
        root.mkdir(parents=True)
        outside.mkdir()
        tree = Tree(root, outside, rng)
        for _ in range(8):
            tree.apply_one(rng.choice(["create", "create", "mkdir"]))
        with Index.open(root) as index:
            index.update()
            watcher = Watcher(index, debounce=0.05, reconcile_every=None)
            watcher.start()
            for _ in range(OPERATIONS):
                tree.apply()
                time.sleep(rng.choice([0, 0, 0, 0.003, 0.03, 0.1]))
            for _ in range(2):
                time.sleep(0.3)
                watcher.wait_idle(60)
            from_events = snapshot(index)
            watcher.rescan()
            time.sleep(0.3)
            watcher.wait_idle(60)
            watcher.stop()
            reconciled = snapshot(index)
        with Index.open(root, IndexSettings(index_dir=work / f"w{seed}" / "fresh")) as fresh:
            fresh.update()
            expected = snapshot(fresh)
        events_wrong += from_events != expected
        if reconciled != expected:
            row.fail("corrupt", f"seed {seed}: {sorted(set(expected) ^ set(reconciled))}")
    row.notes.append(f"after one reconcile equal to a fresh index {seeds - row.corrupt}/{seeds}; "
                     f"events alone {seeds - events_wrong}/{seeds}")
    return row


def _hostile_reconcile(work: Path, n: int) -> Row:
    # The periodic reconcile is a stat-only rescan; with nothing changed it must be cheap on a 10k-file tree.
    big = work / "reconcile"
    for i in range(n):
        folder = big / f"d{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{i}.py").write_text("def same():\n    return 1\n")  # one embedding for all
    row = Row(f"reconcile rescan, {n} files, nothing changed", tried=3, lost=None)
    with Index.open(big) as index:
        index.update()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            stats = index.update()
            times.append(time.perf_counter() - started)
            if stats.files_changed or stats.files_removed:
                row.fail("corrupt", f"rescan changed {stats.files_changed} files")
    best = min(times)
    row.notes.append(f"{best:.2f} s (median {statistics.median(times):.2f} s); once a minute that is "
                     f"{best / 60 * 100:.1f} % of one core")
    return row


# -- main ------------------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer kill points and damage variants, 15 s of load")
    ap.add_argument("--load-seconds", type=float, help="concurrent-load duration (default 60; quick 15)")
    ap.add_argument("--clients", type=int, default=8, help="search threads in the load test (default 8)")
    ap.add_argument("--kill-files", type=int, help="modules (3 functions each) in the fault repo (default 80)")
    ap.add_argument("--kill-dirty", type=int, help="modules rewritten before each kill round (default 16)")
    ap.add_argument("--churn-seconds", type=float, help="how long files churn under updates (default 20)")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    args.load_seconds = args.load_seconds or (15.0 if args.quick else 60.0)
    args.kill_files = args.kill_files or (30 if args.quick else 80)
    args.kill_dirty = min(args.kill_dirty or (8 if args.quick else 16), args.kill_files)
    args.churn_seconds = args.churn_seconds or (5.0 if args.quick else 20.0)
    only = set(args.only or SECTIONS)

    work = Path(tempfile.mkdtemp(prefix="needle-rel-"))
    start_load = load()
    sampler = LoadSampler()
    say(f"load average at start: {start_load}; work folder {work}")
    rows: list[Row] = []
    figures: dict | None = None
    t_all = time.perf_counter()
    try:
        if "badinput" in only:
            rows += bench_badinput(work, args)
        repo = None
        if "sigkill" in only:
            kill_rows, repo = bench_sigkill(work, args)
            rows += kill_rows
        if repo is None and only & {"usearch", "sqlite", "diskfull", "load"}:
            repo = make_repo(work / "kill-repo", args.kill_files)
            run_needle("index", "--json", str(repo))
        if "usearch" in only:
            rows += bench_usearch(repo, args)
        if "sqlite" in only:
            rows.append(bench_sqlite(repo, args))
        if "diskfull" in only:
            rows.append(bench_diskfull(repo, work))
        if "load" in only:
            run_needle("index", "--json", str(repo))
            load_row, figures = bench_load(repo, args)
            rows.append(load_row)
        if "doors-a" in only:  # issue 17a
            rows.append(bench_doors_data(work))
            rows.append(bench_doors_confinement(work))
            rows.append(bench_doors_memory(work)[0])
        if "hostile" in only:
            rows += bench_hostile(work, args)
        end_load = load()
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"Needle reliability — {time.strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - t_all:.0f} s")
    w = max(len(r.area) for r in rows) + 2
    print(f"{'what':<{w}}{'tried':>7}{'crashes':>9}{'corrupt':>9}{'emb. lost':>11}   notes")
    for r in rows:
        lost = "n/a" if r.lost is None else str(r.lost)
        print(f"{r.area:<{w}}{r.tried:>7}{r.crashes:>9}{r.corrupt:>9}{lost:>11}   {' | '.join(r.notes)}")
    issue_rows = [r for r in rows if not r.hostile]
    crashes = sum(r.crashes for r in issue_rows)
    corrupt = sum(r.corrupt for r in issue_rows)
    lost = sum(r.lost or 0 for r in issue_rows)
    faults = sum(r.tried for r in rows if r.area.startswith(("SIGKILL", "corrupted", "damaged", "disk", "usearch")))
    inputs = sum(r.tried for r in rows if r.area.startswith(("bad-input", "files vanishing")))
    print(f"{'TOTAL':<{w}}{'':>7}{crashes:>9}{corrupt:>9}{lost:>11}   goal 0 / 0 / 0: "
          f"{'met' if not (crashes or corrupt or lost) else 'NOT met'}; {inputs} inputs tried, {faults} faults injected"
          f"{' (TOTAL leaves out the hostile tampering row)' if len(issue_rows) < len(rows) else ''}")
    hostile = [r for r in rows if r.area.startswith(HOSTILE_AREAS)]
    if hostile:
        tried = sum(r.tried for r in hostile)
        broke = sum(r.crashes + r.corrupt for r in hostile)
        print(f"hostile patterns and files: {tried} attacks tried, {tried - broke} held (goal: all)")
    if figures:
        f = figures
        rss0, rss_mid, rss_end, rss_max = f["rss"]
        print(f"concurrent load: {args.clients} clients x {f['seconds']:.0f} s on {f['files']} files while the watcher "
              f"absorbed {f['edits']} edits ({f['batches']} batches)")
        print(f"  searches {f['searches']:,} ({f['qps']:.1f}/s), errors {f['errors']} (goal 0), watcher errors "
              f"{f['watch_errors']}, edits not searchable afterwards {f['missing']} of {f['edited_files']} files")
        print(f"  latency p50 {f['p50'] * 1000:.0f} ms, p99 {f['p99'] * 1000:.0f} ms, max {f['max'] * 1000:.0f} ms")
        growth = rss_end - rss_mid
        print(f"  RSS start {rss0:.0f} MB, middle {rss_mid:.0f} MB, end {rss_end:.0f} MB (max {rss_max:.0f} MB); "
              f"second half {growth:+.0f} MB: {'flat' if growth < max(25, 0.05 * rss_mid) else 'GROWING'}"
              f"{'' if os.environ.get('MALLOC_ARENA_MAX') else ' (MALLOC_ARENA_MAX unset: glibc keeps a malloc arena per thread)'}")
        print(f"  RSS every ~{len(f['rss_series']) and f['seconds'] / len(f['rss_series']):.0f} s: "
              + " ".join(f"{x:.0f}" for x in f["rss_series"]))
    failures = [x for r in rows for x in r.failures]
    if failures:
        print("details:")
        for x in failures:
            print(f"  - {x}")
    print(f"load average: start {start_load}; end {end_load}; {sampler.summary()}")
    bad = crashes or corrupt or lost or (figures and (figures["errors"] or figures["missing"]))
    bad = bad or any(r.failures for r in rows if r.area.startswith("17a"))  # an attack or fault not held
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
