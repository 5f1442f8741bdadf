"""What everyday git workflows cost the index: chunks embedded again by `needle index` after each, beside what a
tool that rebuilds (or cannot tell moved or unchanged code from new code) embeds: every chunk.

A real package (``click`` from this environment's site-packages, or ``--package``) is copied into a git repository
and indexed; then each workflow runs and ``needle index --json`` (the update `needle watch` and the editors run
after a change, through the same command a user types) reports the chunks it embedded. The machine's shared
embedding cache is off, so vectors it keeps cannot hide a re-embedding. After each step the index's files are
checked against the working tree.

    .venv/bin/python bench/sync_workflows.py              # click
    .venv/bin/python bench/sync_workflows.py --package jinja2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

NEEDLE = Path(sys.executable).with_name("needle")
ENV = {**os.environ, "NEEDLE_EMBEDDING_CACHE": "off", "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@x"}

NEW_FUNCTION = '''

def bench_added_function(values):
    """Return the values sorted, without duplicates."""
    return sorted(set(values))
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=ENV)


def index(repo: Path) -> dict:
    proc = subprocess.run([str(NEEDLE), "index", "--json", str(repo)], capture_output=True, text=True, env=ENV,
                          check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def indexed_files(repo: Path) -> set[str]:
    with sqlite3.connect(repo / ".needle" / "index.db") as conn:
        return {row[0] for row in conn.execute("SELECT path FROM files")}


def tree_files(repo: Path) -> set[str]:
    """The working tree's files: not under .git or .needle, not ignored."""
    found = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                   if p.is_file() and not {".git", ".needle"} & set(p.relative_to(repo).parts)
                   and p.name != ".gitignore")
    # --no-index: a tracked file that .gitignore matches is left out too (as Needle and ripgrep read it)
    proc = subprocess.run(["git", "-C", str(repo), "check-ignore", "--no-index", "--stdin"], input="\n".join(found),
                          capture_output=True, text=True, env=ENV)
    return set(found) - set(proc.stdout.splitlines())


def chunk_count(repo: Path) -> int:
    with sqlite3.connect(repo / ".needle" / "index.db") as conn:
        return conn.execute("SELECT count(*) FROM chunks").fetchone()[0]


def workflows(pkg: str) -> list[tuple[str, Callable[[Path], None]]]:
    """(what a developer does, the commands) in order: each starts from where the one before left the tree."""
    files = lambda repo: sorted((repo / pkg).glob("*.py"))  # noqa: E731 - a one-line lookup

    def branch_with_edits(repo: Path) -> None:
        git(repo, "checkout", "-q", "-b", "feature")
        first, second, gone = files(repo)[:3]
        first.write_text(first.read_text().replace("def ", "def renamed_", 1))
        with second.open("a") as fh:
            fh.write(NEW_FUNCTION)
        git(repo, "rm", "-q", str(gone))
        git(repo, "commit", "-qam", "feature")

    def stash(repo: Path) -> None:
        with files(repo)[3].open("a") as fh:
            fh.write(NEW_FUNCTION.replace("bench_added", "bench_stashed"))
        git(repo, "stash", "-q")

    def move_package(repo: Path) -> None:
        git(repo, "mv", pkg, f"{pkg}_moved")

    def ignore_package(repo: Path) -> None:
        (repo / ".gitignore").write_text(f"{pkg}_moved/\n")

    return [
        ("git checkout -b, rename a function, add one, git rm a file", branch_with_edits),
        ("git checkout back to main", lambda repo: git(repo, "checkout", "-q", "main")),
        ("git checkout the branch again", lambda repo: git(repo, "checkout", "-q", "feature")),
        ("an edit, then git stash", stash),
        ("git stash pop", lambda repo: git(repo, "stash", "pop", "-q")),
        ("git reset --hard HEAD~1", lambda repo: git(repo, "reset", "-q", "--hard", "HEAD~1")),
        ("git mv the package to a new name", move_package),
        ("git mv it back", lambda repo: git(repo, "mv", f"{pkg}_moved", pkg)),
        ("rm -rf the package", lambda repo: shutil.rmtree(repo / pkg)),
        ("git checkout -- . (it comes back)", lambda repo: git(repo, "checkout", "-q", "--", ".")),
        ("git mv again, then .gitignore it", lambda repo: (move_package(repo), ignore_package(repo))),
        ("the .gitignore line removed", lambda repo: (repo / ".gitignore").write_text("")),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default="click", help="an installed pure-Python package to copy (default click)")
    args = ap.parse_args(argv)
    spec = importlib.util.find_spec(args.package)
    if spec is None or not spec.submodule_search_locations:
        ap.error(f"{args.package} is not an installed package")
    source = Path(next(iter(spec.submodule_search_locations)))
    with tempfile.TemporaryDirectory(prefix="needle-sync-workflows-") as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(source, repo / args.package, ignore=shutil.ignore_patterns("__pycache__"))
        (repo / ".gitignore").write_text("")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "start")
        cold = index(repo)
        print(f"{args.package}: {cold['files_changed']} files, {cold['chunks_embedded']} chunks embedded cold "
              f"in {cold['seconds']:.1f}s")
        print(f"{'workflow':<60} {'Needle':>8} {'rebuild':>8} {'ratio':>7}  files")
        total = rebuilt = 0
        for name, step in workflows(args.package):
            step(repo)
            stats = index(repo)
            chunks = chunk_count(repo)
            # Moved or re-checked-out code is the same text: a tool that keys vectors by path, or rebuilds,
            # embeds every chunk of the tree again.
            total, rebuilt = total + stats["chunks_embedded"], rebuilt + chunks
            exact = indexed_files(repo) == tree_files(repo)
            ratio = f"{stats['chunks_embedded'] / chunks:>7.3f}" if chunks else f"{'-':>7}"
            print(f"{name:<60} {stats['chunks_embedded']:>8} {chunks:>8} {ratio}"
                  f"  {'match the tree' if exact else 'DIFFER from the tree'}")
        print(f"{'all workflows':<60} {total:>8} {rebuilt:>8} {total / rebuilt:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
