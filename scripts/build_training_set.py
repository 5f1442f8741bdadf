"""Build Needle's training and held-out evaluation sets from offline sources; rerunnable by anyone.

    python scripts/build_training_set.py fetch --work .cache/corpus      # download + unpack (network: registries)
    python scripts/build_training_set.py mine  --work .cache/corpus      # chunk, filter, dedupe, split -> JSONL

`fetch` records every package's exact version and sha256 in ``<work>/manifest.json``; pass
``--pinned manifest.json`` to fetch exactly those versions again. `mine` writes ``<work>/pairs/train.jsonl``,
``heldout.jsonl`` (documented functions of the held-out repositories) and ``heldout_corpus.jsonl`` (every
function of those repositories: the candidates a query is searched among), plus ``stats.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codeneedle.training import corpus  # noqa: E402
from codeneedle.training.pack import file_sha256  # noqa: E402


def _run(cmd: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def fetch_pypi(name: str, pin: str | None, downloads: Path, src: Path) -> dict:
    """`pip download` one wheel (no deps, no sdist builds) and unpack it under ``src/pypi/<name>``."""
    dest = downloads / "pypi" / name
    dest.mkdir(parents=True, exist_ok=True)
    spec = f"{name}=={pin}" if pin else name
    res = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                "--disable-pip-version-check", "-d", str(dest), spec])
    files = sorted(dest.glob("*.whl"))
    if res.returncode != 0 or not files:
        return {"ecosystem": "pypi", "name": name, "error": (res.stderr or "no wheel").strip()[-300:]}
    wheel = files[-1]
    out = src / "pypi" / name
    shutil.rmtree(out, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.endswith((".py", ".pyi")) and ".." not in member:
                zf.extract(member, out)
    version = wheel.name.split("-")[1]
    return {"ecosystem": "pypi", "name": name, "version": version, "file": wheel.name, "sha256": file_sha256(wheel)}


_NPM_EXT = (".js", ".mjs", ".cjs", ".ts", ".jsx", ".tsx")


def fetch_npm(name: str, pin: str | None, downloads: Path, src: Path) -> dict:
    """`npm pack` one package tarball and unpack its JS/TS files under ``src/npm/<name>``."""
    dest = downloads / "npm" / name.replace("/", "__")
    dest.mkdir(parents=True, exist_ok=True)
    spec = f"{name}@{pin}" if pin else name
    res = _run(["npm", "pack", spec, "--loglevel=error", "--pack-destination", str(dest.resolve())], cwd=dest)
    tgzs = sorted(dest.glob("*.tgz"))
    if res.returncode != 0 or not tgzs:
        return {"ecosystem": "npm", "name": name, "error": (res.stderr or res.stdout or "no tarball").strip()[-300:]}
    tgz = tgzs[-1]
    out = src / "npm" / name.replace("/", "__")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tarfile.open(tgz) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(_NPM_EXT) and ".." not in m.name]
        tf.extractall(out, members=members, filter="data")
    return {"ecosystem": "npm", "name": name, "version": tgz.name[: -len(".tgz")].rsplit("-", 1)[-1],
            "file": tgz.name, "sha256": file_sha256(tgz)}


def fetch_debian(name: str, pin: str | None, downloads: Path, src: Path) -> dict:
    """`apt-get download` one .deb and extract it (not installed) under ``src/debian/<name>``."""
    dest = downloads / "debian"
    dest.mkdir(parents=True, exist_ok=True)
    spec = f"{name}={pin}" if pin else name
    res = _run(["apt-get", "download", spec], cwd=dest, timeout=900)
    if res.returncode != 0 and pin:
        # Debian keeps only a release's current version: a pinned one that is gone falls back to it, and the
        # manifest says which was asked for (openjdk-17-source 17.0.21.1 was gone a day after it was fetched).
        res = _run(["apt-get", "download", name], cwd=dest, timeout=900)
    debs = sorted(dest.glob(f"{name}_*.deb"), key=lambda f: f.stat().st_mtime)
    if res.returncode != 0 or not debs:
        return {"ecosystem": "debian", "name": name, "error": (res.stderr or "no deb").strip()[-300:]}
    deb = debs[-1]
    out = src / "debian" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(out)], timeout=900)
    for z in out.rglob("src.zip"):  # openjdk ships its sources zipped
        with zipfile.ZipFile(z) as zf:
            members = [m for m in zf.namelist() if m.endswith(".java") and m.startswith("java.")]
            zf.extractall(z.parent / "src", members=members)
        z.unlink()
    version = deb.name.split("_")[1].replace("%3a", ":")
    entry = {"ecosystem": "debian", "name": name, "version": version, "file": deb.name, "sha256": file_sha256(deb)}
    return entry if not pin or pin == version else {**entry, "pinned": pin}


def cmd_fetch(args: argparse.Namespace) -> None:
    work = Path(args.work)
    downloads, src = work / "downloads", work / "src"
    pins: dict[tuple[str, str], str] = {}
    if args.pinned:
        for e in json.loads(Path(args.pinned).read_text())["packages"]:
            if "version" in e:
                pins[(e["ecosystem"], e["name"])] = e["version"]
    jobs = [("pypi", n) for n in dict.fromkeys(corpus.PYPI_TRAIN + corpus.PYPI_HELDOUT)]
    jobs += [("npm", n) for n in dict.fromkeys(corpus.NPM_TRAIN + corpus.NPM_HELDOUT)]
    if not args.no_debian:
        jobs += [("debian", n) for n in corpus.DEBIAN_TRAIN]
    if args.pinned:
        jobs = [j for j in jobs if j in pins]
    fetchers = {"pypi": fetch_pypi, "npm": fetch_npm, "debian": fetch_debian}
    done: dict[tuple[str, str], dict] = {}
    if (work / "manifest.json").is_file() and not args.refetch:
        for e in json.loads((work / "manifest.json").read_text())["packages"]:
            if "version" in e and (src / e["ecosystem"] / e["name"].replace("/", "__")).is_dir():
                done[(e["ecosystem"], e["name"])] = e

    def one(job: tuple[str, str]) -> dict:
        eco, name = job
        if job in done and (job not in pins or pins[job] in (done[job]["version"], done[job].get("pinned"))):
            return done[job]
        t0 = time.time()
        try:
            entry = fetchers[eco](name, pins.get(job), downloads, src)
        except Exception as exc:  # a broken package is recorded, never fatal
            entry = {"ecosystem": eco, "name": name, "error": repr(exc)[-300:]}
        status = entry.get("version") or ("ERROR " + entry.get("error", "")[:80])
        print(f"{eco:7s} {name:32s} {status}  ({time.time() - t0:.1f}s)", flush=True)
        return entry

    with ThreadPoolExecutor(args.jobs) as pool:
        entries = list(pool.map(one, jobs))
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": sys.version.split()[0],
                "packages": entries}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    ok = sum("version" in e for e in entries)
    print(f"fetched {ok}/{len(entries)} packages; manifest: {work / 'manifest.json'}")


def cmd_mine(args: argparse.Namespace) -> None:
    from codeneedle.training.mining import STYLE_MIX, build_dataset

    work = Path(args.work)
    stats = build_dataset(work / "src", work / args.out, stdlib=Path(args.stdlib) if args.stdlib else None,
                          max_per_repo=args.max_per_repo, seed=args.seed, progress=print,
                          mix=STYLE_MIX if args.style_mix else None)
    print(json.dumps(stats["totals"], indent=1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download and unpack the source packages")
    f.add_argument("--work", default=".cache/corpus")
    f.add_argument("--pinned", help="a manifest.json from an earlier run: fetch exactly those versions")
    f.add_argument("--jobs", type=int, default=6)
    f.add_argument("--refetch", action="store_true", help="fetch again what an earlier run already unpacked")
    f.add_argument("--no-debian", action="store_true", help="skip the Go/Rust/Java standard library sources")
    m = sub.add_parser("mine", help="mine (query, code) pairs from what fetch unpacked")
    m.add_argument("--work", default=".cache/corpus")
    m.add_argument("--stdlib", default=str(Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"),
                   help="Python standard library folder ('' to skip)")
    m.add_argument("--max-per-repo", type=int, default=6000, help="cap pairs per repository (big ones dominate)")
    m.add_argument("--seed", type=int, default=13)
    m.add_argument("--style-mix", action="store_true",
                   help="also draw name, other-sentence and parameter queries (mining.STYLE_MIX)")
    m.add_argument("--out", default="pairs", help="folder under --work for the JSONL files (default: pairs)")
    args = ap.parse_args(argv)
    {"fetch": cmd_fetch, "mine": cmd_mine}[args.cmd](args)


if __name__ == "__main__":
    main()
