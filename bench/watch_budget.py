"""What live sync costs the machine beside build tools: inotify watches held, and CPU during a build's churn.

Builds a small project (40 source files in 4 folders) beside the folders build tools fill and .gitignore excludes:
a ``node_modules/`` of N packages (3 folders each) and a Rust-style ``target/``. Then, from the same run:

- ``needle watch`` on it (the product as the user runs it), and
- the baseline: watchdog's recursive observer on the same tree in a process of its own, with a handler that does
  nothing (what Needle did before, and what any watchdog-based tool does),

and reports, for each, the inotify watches the process holds (``/proc/PID/fdinfo``: they come out of the per-user
``fs.inotify.max_user_watches`` budget that editors share) and the CPU seconds it spends while an npm-install-like
storm (packages written, then removed) and a cargo-build-like storm (files rewritten in ``target/``) run, plus the
lines ``needle watch`` printed for them (none is right: nothing indexed changed).

    .venv/bin/python bench/watch_budget.py                 # 600 packages (1,800 folders)
    .venv/bin/python bench/watch_budget.py --packages 100  # quicker
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEEDLE = Path(sys.executable).with_name("needle")
TICK = os.sysconf("SC_CLK_TCK")
BASELINE = """
import sys, time
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
observer = Observer()
observer.schedule(FileSystemEventHandler(), sys.argv[1], recursive=True)
observer.start()
print("watching", flush=True)
while True:
    time.sleep(1)
"""


def build(root: Path, packages: int) -> None:
    for d in range(4):
        for f in range(10):
            path = root / f"src/part{d}/mod{f}.js"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"/** Adds {d} and {f}. */\nfunction add_{d}_{f}(x) {{\n  return x + {d * f};\n}}\n"
                            f"module.exports = {{ add_{d}_{f} }};\n")
    (root / ".gitignore").write_text("node_modules/\ntarget/\n")
    for i in range(packages):
        for sub in ("lib", "dist", "types"):
            folder = root / f"node_modules/pkg{i}/{sub}"
            folder.mkdir(parents=True)
            (folder / "index.js").write_text("module.exports = 1;\n")
    for i in range(50):
        (root / f"target/debug/incremental/crate{i}").mkdir(parents=True)


def npm_storm(root: Path) -> None:
    """Install-like: 200 new packages of 3 folders and 12 files, then removed again."""
    for i in range(200):
        for sub in ("lib", "dist", "types"):
            folder = root / f"node_modules/new{i}/{sub}"
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(4):
                (folder / f"f{j}.js").write_text("module.exports = 1;\n" * 20)
    for i in range(200):
        shutil.rmtree(root / f"node_modules/new{i}")


def cargo_storm(root: Path) -> None:
    """Build-like: 3,000 writes in target/."""
    for _ in range(3):
        for i in range(50):
            for j in range(20):
                (root / f"target/debug/incremental/crate{i}/q{j}.bin").write_bytes(os.urandom(2048))


def watches(pid: int) -> int:
    total = 0
    for info in glob.glob(f"/proc/{pid}/fdinfo/*"):
        try:
            total += sum(line.startswith("inotify wd:") for line in Path(info).read_text().splitlines())
        except OSError:
            continue
    return total


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def started(proc: subprocess.Popen, log: Path, word: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while word not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    time.sleep(1.0)  # its first rescan


def measure(cmd: list[str], root: Path, work: Path, label: str, word: str, out_is_log: bool) -> dict:
    out, err = work / f"{label}.out", work / f"{label}.err"
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env={**os.environ, "NEEDLE_EMBEDDING_CACHE": "off"})
    try:
        started(proc, out if out_is_log else err, word)
        figures = {"watches": watches(proc.pid)}
        for name, storm in (("npm", npm_storm), ("cargo", cargo_storm)):
            before = cpu_s(proc.pid)
            storm(root)
            time.sleep(5)  # debounce, batches, and the kernel's queue drained
            figures[name] = cpu_s(proc.pid) - before
        figures["lines"] = len(out.read_text(errors="replace").splitlines()) - (1 if out_is_log else 0)
        return figures
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=600, help="packages in node_modules (3 folders each)")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        print("inotify is Linux's: nothing to measure here")
        return 0
    with tempfile.TemporaryDirectory(prefix="needle-watch-budget-") as tmp:
        work = Path(tmp)
        root = work / "project"
        build(root, args.packages)
        index = subprocess.run([str(NEEDLE), "index", str(root)], capture_output=True, text=True,
                               env={**os.environ, "NEEDLE_EMBEDDING_CACHE": "off"})
        if index.returncode:
            raise SystemExit(index.stderr)
        folders = sum(1 for _ in root.rglob("*") if _.is_dir())
        needle = measure([str(NEEDLE), "watch", str(root)], root, work, "needle", "watching", out_is_log=False)
        # The same tree for the baseline: the npm storm removed what it wrote, the cargo storm rewrote in place.
        base = measure([sys.executable, "-c", BASELINE, str(root)], root, work, "baseline", "watching", out_is_log=True)
    print(f"tree: {folders:,} folders ({args.packages} packages in node_modules/, 50 crates in target/), "
          "40 source files in 5 folders")
    print(f"{'':34}{'needle watch':>14}{'watchdog recursive':>20}{'ratio':>8}")
    print(f"{'inotify watches held':34}{needle['watches']:>14,}{base['watches']:>20,}"
          f"{needle['watches'] / max(base['watches'], 1):>8.3f}")
    for name, what in (("npm", "CPU s, npm-like storm (2,400 files)"), ("cargo", "CPU s, cargo-like storm (3,000)")):
        print(f"{what:34}{needle[name]:>14.2f}{base[name]:>20.2f}"
              f"{needle[name] / base[name] if base[name] else float('nan'):>8.2f}")
    print(f"{'lines needle watch printed':34}{needle['lines']:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
