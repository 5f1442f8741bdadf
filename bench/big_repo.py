"""A big real tree, the way a user meets it: `needle index` of ~50k chunks of site-packages, then the everyday
commands over it, each timed as a separate `needle` process.

    .venv/bin/python bench/big_repo.py WORKDIR [--packages sklearn networkx pygments scipy] [--skip-build]

WORKDIR/big gets copies of the packages (from this venv's site-packages; ~2,835 files, ~52,700 chunks with the
default four) under `git init`; WORKDIR/cache is the user cache (a fresh one: no vectors reused from other
indexes). Never point WORKDIR at a folder holding other work: it is filled and `big/scipy` deleted and restored.

Figures printed (wall seconds, peak RSS of the `needle` process):
  build           cold `needle index` (walk, chunk, embed, save) and its progress lines (rate, ETA)
  warm            `needle index` with nothing changed, x3
  status          `needle status`, x3
  search          one-shot `needle search`, 5 queries
  touch           `needle index` after touching 2,000 files (same content): nothing may be re-embedded
  delete          `needle index` after deleting scipy/ (~1,074 files, ~28k chunks)
  reader          `needle search --no-refresh` with the vector file gone (what a search in another shell does while
                  a first build runs: the file is saved at its end)

Measured 2026-12-07 on the 2-core CI box, shared with a test run (see docs/BENCHMARKS.md, "A big repository").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

NEEDLE = str(Path(sys.executable).with_name("needle"))
QUERIES = ["compute the shortest path between two nodes", "fit a linear regression model",
           "lexer for python tokens", "sparse matrix multiplication", "HttpLexer"]


def timed(*args: str, cwd: Path, env: dict) -> tuple[float, int, str]:
    """(wall s, peak RSS MiB, stderr + stdout) of one `needle` command."""
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        began = time.perf_counter()
        proc = subprocess.Popen([NEEDLE, *args], cwd=cwd, env=env, stdout=log, stderr=log, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    if proc.returncode:
        raise SystemExit(f"needle {' '.join(args)} failed: {text[-2000:]}")
    return wall, usage.ru_maxrss // 1024, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--packages", nargs="+", default=["sklearn", "networkx", "pygments", "scipy"])
    ap.add_argument("--skip-build", action="store_true", help="reuse WORKDIR/big and its index")
    args = ap.parse_args()
    big, site = args.workdir / "big", Path(sysconfig.get_paths()["purelib"])
    env = {**os.environ, "XDG_CACHE_HOME": str(args.workdir / "cache")}
    if not args.skip_build:
        shutil.rmtree(big, ignore_errors=True)
        big.mkdir(parents=True)
        for name in args.packages:
            shutil.copytree(site / name, big / name, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["git", "init", "-q", str(big)], check=True)
        wall, rss, err = timed("index", ".", cwd=big, env=env)
        print(f"build: {wall:.1f} s, peak RSS {rss} MiB")
        print("  " + "\n  ".join(line for line in err.splitlines() if line.strip())[-3000:])
    for label, command in (("warm", ("index", ".")), ("status", ("status", "."))):
        for _ in range(3):
            wall, rss, _err = timed(*command, cwd=big, env=env)
            print(f"{label}: {wall:.2f} s")
    for q in QUERIES:
        wall, _rss, _err = timed("search", q, ".", "-n", "0", cwd=big, env=env)
        print(f"search {q!r}: {wall:.2f} s")
    files = sorted(p for p in big.rglob("*.py") if ".needle" not in p.parts)[:2000]
    for p in files:
        os.utime(p)
    wall, _rss, err = timed("index", ".", cwd=big, env=env)
    print(f"touch {len(files)} files: {wall:.2f} s; {err.strip().splitlines()[-1]}")
    moved = args.workdir / "scipy.moved"
    shutil.move(big / "scipy", moved)
    wall, _rss, err = timed("index", ".", cwd=big, env=env)
    print(f"delete scipy/: {wall:.2f} s; {err.strip().splitlines()[-1]}")
    shutil.move(moved, big / "scipy")
    wall, _rss, err = timed("index", ".", cwd=big, env=env)
    print(f"restore scipy/ (vectors still cached): {wall:.2f} s; {err.strip().splitlines()[-1]}")
    for name in ("vectors.usearch", "vectors.usearch.json"):
        (big / ".needle" / name).unlink()
    wall, _rss, _err = timed("search", QUERIES[3], ".", "--no-refresh", "-n", "0", cwd=big, env=env)
    print(f"reader search, vector file gone: {wall:.2f} s")
    timed("index", ".", cwd=big, env=env)  # the writer puts the file back


if __name__ == "__main__":
    main()
