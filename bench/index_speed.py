"""Indexing speed: the pipeline's cold throughput against the encoder's raw throughput on the same chunks.

Prints files/s and chunks/s for a cold index of a real source tree, the encoder's own batch throughput over
the same chunk texts in the same run, their ratio (goal >= 0.80), the warm (nothing changed) re-index time,
the warm re-index time of a 10,000-file tree (goal < 2 s), and peak RSS.

    .venv/bin/python bench/index_speed.py [--repo PATH] [--max-functions N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.encoder import Encoder, embed_text
from codeneedle.indexer.index import Index
from codeneedle.indexer.languages import language_for_path

STDLIB_PACKAGES = ("json", "email", "http", "logging", "urllib", "xml", "importlib", "concurrent", "unittest")


def stdlib_sample(dest: Path) -> Path:
    """A real tree of Python packages from the standard library, copied so the index lands in a temp folder."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_PACKAGES:
        shutil.copytree(lib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    return dest


def count_chunks(repo: Path) -> tuple[int, int, list[str]]:
    files = [p for p in repo.rglob("*") if p.is_file() and ".needle" not in p.parts]
    texts, functions = [], 0
    for p in files:
        rel = p.relative_to(repo).as_posix()
        for c in chunk_source(rel, p.read_bytes(), language_for_path(rel)):
            texts.append(embed_text(c))
            functions += c.kind in ("function", "method")
    return len(files), functions, texts


def many_files_tree(dest: Path, n: int) -> Path:
    """n small files (identical code: the embedding cache embeds it once) to time the stat-only warm path."""
    for i in range(n):
        d = dest / f"pkg{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i % 100:02d}.py").write_text("def handler(event):\n    return event\n")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, help="source tree to index (default: a stdlib sample)")
    ap.add_argument("--many-files", type=int, default=10_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="needle-bench-"))
    try:
        repo = shutil.copytree(args.repo, work / "repo") if args.repo else stdlib_sample(work / "repo")
        n_files, n_functions, texts = count_chunks(repo)
        print(f"tree: {repo} — {n_files} files, {n_functions} functions/methods, {len(texts)} chunks")

        index = Index.open(repo)
        index.encoder  # noqa: B018 - load the model outside the timed region, as for the raw run
        t0 = time.perf_counter()
        stats = index.update()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_stats = index.update()
        warm = time.perf_counter() - t0
        index.close()

        encoder = Encoder.shared(index.model_name, index.model_dir)
        t0 = time.perf_counter()
        encoder.encode(texts)
        raw = time.perf_counter() - t0

        many = many_files_tree(work / "many", args.many_files)
        with Index.open(many) as big:
            big.update()
            t0 = time.perf_counter()
            big_warm_stats = big.update()
            big_warm = time.perf_counter() - t0

        pipeline_cps = stats.chunks_embedded / cold
        raw_cps = len(texts) / raw
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        print(f"{'measure':44} {'needle':>12} {'baseline':>12} {'ratio':>8}")
        print(f"{'cold index: chunks/s (vs raw encoder)':44} {pipeline_cps:12.1f} {raw_cps:12.1f} "
              f"{pipeline_cps / raw_cps:8.2f}   goal >= 0.80")
        print(f"{'cold index: files/s':44} {stats.files_changed / cold:12.1f}")
        print(f"{'cold index: seconds':44} {cold:12.2f} {raw:12.2f}")
        print(f"{'warm re-index (nothing changed): seconds':44} {warm:12.3f}   ({warm_stats.files_unchanged} files)")
        print(f"{f'warm re-index, {args.many_files} files: seconds':44} {big_warm:12.3f} {2.0:12.3f} "
              f"{big_warm / 2.0:8.2f}   goal < 2 s ({big_warm_stats.files_unchanged} files unchanged)")
        print(f"{'peak RSS: MiB':44} {rss:12.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
