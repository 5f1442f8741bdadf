"""Shared fixtures: real repositories copied to temp folders, the real `needle` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The machine's shared vectors (indexer/shared_cache.py) would carry one test's embeddings into another's counts,
# and from one CI run into the next: off for every test and every `needle` it starts; its own tests turn it on.
os.environ["NEEDLE_EMBEDDING_CACHE"] = "off"

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
NEEDLE = Path(sys.executable).with_name("needle")
# Fixture repositories hold their own test files (tests/fixtures/rankrepo/tests/): data, not our tests.
collect_ignore_glob = ["fixtures/*"]


def copy_fixture(name: str, dest: Path) -> Path:
    """A fresh copy of ``tests/fixtures/<name>`` at ``dest`` (tests mutate their copy, never the original)."""
    shutil.copytree(FIXTURES / name, dest)
    return dest


@pytest.fixture(scope="module")
def minirepo(tmp_path_factory) -> Path:
    """A small polyglot repository (Python, Go, TypeScript, Ruby, C, Java), shared by a test module."""
    return copy_fixture("minirepo", tmp_path_factory.mktemp("repo") / "minirepo")


@pytest.fixture(scope="module")
def rankrepo(tmp_path_factory) -> Path:
    """``tests/fixtures/rankrepo`` (a stub beside its implementation, a CommonJS module, tests beside their
    subjects, ...), copied and indexed by the real CLI."""
    repo = copy_fixture("rankrepo", tmp_path_factory.mktemp("rankrepo") / "rankrepo")
    proc = run_needle("index", "--path", str(repo), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return repo


def mount_tmpfs(mount: Path, size: str) -> None:
    """Make ``mount`` a tmpfs of ``size`` (a small disk that fills up); skips the test where mounting needs root."""
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")


def run_needle(*args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `needle` command the way a user would."""
    return subprocess.run(
        [str(NEEDLE), *args], input=input, capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_needle_together(*commands: tuple[str, ...], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Run independent `needle` commands side by side (each is mostly start-up on one core) and return each
    one's result, in order."""
    procs = [subprocess.Popen([str(NEEDLE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args in commands]
    results = []
    try:
        for args, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess([str(NEEDLE), *args], proc.returncode, out, err))
    finally:
        for proc in procs:  # a timeout must not leave the others running
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> Path:
    """A small real re-ranker, trained once per test process by our own training code (1 layer over frozen token
    embeddings, 20 passes over the 11 functions of ``tests.test_training_rerank.FUNCTIONS``): tests that check the
    second stage's mechanics install this one, so the shipped weights' judgement does not decide them."""
    import json

    from codeneedle.training.rerank import RerankConfig, train_reranker
    from tests.test_training_rerank import records

    work = tmp_path_factory.mktemp("reranker")
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    cfg = RerankConfig(data=str(data), out=str(work / "tiny-reranker"), base="minilm", layers=1, group=4,
                       mine_depth=5, batch_queries=2, lr=5e-4, head_lr=5e-3, epochs=20, max_tokens=64,
                       freeze_embeddings=True)
    return train_reranker(cfg, progress=lambda _p: None)
