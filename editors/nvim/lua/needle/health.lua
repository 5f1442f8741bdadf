--- `:checkhealth needle`: Neovim version, the `needle` command and its version, the index state.
local M = {}

local health = vim.health

--- The argv that runs `needle` itself: the server cmd without its trailing `lsp`.
---@param cmd string[]
---@return string[]
local function needle_argv(cmd)
  local argv = vim.deepcopy(cmd)
  if argv[#argv] == 'lsp' then
    table.remove(argv)
  end
  return argv
end

---@param argv string[]
---@return vim.SystemCompleted?
local function run(argv)
  local ok, proc = pcall(vim.system, argv, { text = true })
  if not ok then
    return nil
  end
  return proc:wait(30000)
end

---@param client vim.lsp.Client
local function check_client(client)
  local status, err = require('needle').execute_sync(client, 'needle.status', nil, 5000)
  if not status then
    health.error(string.format('language server (client %d) did not answer needle.status: %s', client.id, err))
    return
  end
  local lines = require('needle').format_status(status)
  local report = status.state == 'ready' and health.ok or health.warn
  report(string.format('language server running (client %d): index %s', client.id, status.state), { table.concat(lines, '\n') })
  for _, f in ipairs(status.folders or {}) do
    local root = require('needle').folder_root(f.root)
    if f.state == 'ready' and f.readOnly == true then
      health.warn(string.format('index for %s: %s files, %s chunks; %s', root, f.files or 0, f.chunks or 0,
        type(f.message) == 'string' and f.message or 'read-only: searched as it is, not updated'))
    elseif f.state == 'ready' then
      health.ok(string.format('index ready for %s: %s files, %s chunks', root, f.files or 0, f.chunks or 0))
    else
      health.warn(string.format('index for %s is %s (%s files so far)', root, f.state or '?', f.files or 0))
    end
  end
end

--- The project root of the file buffer used last (:checkhealth runs in a buffer of its own), else the cwd;
--- nil when that buffer has no root marker above it.
---@return string?
local function current_root()
  local config = require('needle.config')
  local best ---@type {bufnr: integer, lastused: integer}?
  for _, info in ipairs(vim.fn.getbufinfo({ buflisted = 1 })) do
    if config.is_disk_file(info.bufnr) and (not best or info.lastused > best.lastused) then
      best = info
    end
  end
  if best then
    return config.root_for(best.bufnr)
  end
  return vim.fs.root(vim.fn.getcwd(), config.options.root_markers or config.root_markers)
end

---@param argv string[]
local function check_cli_status(argv)
  local root = current_root()
  if not root then
    local config = require('needle.config')
    health.warn('no project root: ' .. (config.no_root_reason or 'no root marker above the current folder'), {
      'Needle indexes a project only: a folder holding .git, .needle, pyproject.toml, package.json, ...',
    })
    return
  end
  local cmd = vim.list_extend(vim.deepcopy(argv), { 'status', '--json', root })
  local done = run(cmd)
  local ok, status = pcall(vim.json.decode, done and done.stdout or '', { luanil = { object = true } })
  status = ok and type(status) == 'table' and status or {}
  if done and done.code == 0 and status.root then
    health.ok(string.format('index ready for %s: %s files, %s chunks (model %s, last update %s)', status.root,
      status.files, status.chunks, status.model, status.last_update or 'never'))
    health.info('no Needle language server is running; open a file in the project to start it')
    return
  end
  if status.state ~= 'none' then
    -- a damaged index or a broken install, not a missing one: "no index yet" would send the user the wrong way
    local why = status.error or vim.trim(done and done.stderr or '')
    health.error(string.format('`%s` failed: %s', table.concat(cmd, ' '), why ~= '' and why or 'no answer'))
    return
  end
  health.warn(string.format('no index for %s yet', root), {
    'Open a file in the project: the language server builds the index in the background',
    'or run `needle index ' .. root .. '`',
  })
end

function M.check()
  health.start('needle')
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.10 or newer is needed')
  end
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok("vim.lsp.enable('needle') is available (lsp/needle.lua)")
  else
    health.info("Neovim 0.10: use require('needle').setup({})")
  end

  local cmd = require('needle.config').cmd()
  if type(cmd) ~= 'table' then
    health.info('cmd is a function; skipping the executable checks')
  else
    local exe = cmd[1]
    if vim.fn.executable(exe) == 1 then
      health.ok(string.format('`%s` is executable: %s', exe, vim.fn.exepath(exe)))
      local argv = needle_argv(cmd)
      local done = run(vim.list_extend(vim.deepcopy(argv), { '--version' }))
      if done and done.code == 0 then
        health.ok('version: ' .. vim.trim(done.stdout ~= '' and done.stdout or done.stderr))
        if #vim.lsp.get_clients({ name = 'needle' }) == 0 then
          check_cli_status(argv)
        end
      else
        -- nothing else can be asked of a command that cannot even print its version
        health.error(string.format('`%s --version` failed: %s', table.concat(argv, ' '), done and done.stderr or '?'))
      end
    else
      health.error(string.format('`%s` is not executable', exe), {
        'install Needle from its repository: `make setup` (then use .venv/bin/needle) or '
          .. '`make dist && pipx install dist/codeneedle-*.whl` (puts `needle` on PATH)',
        "or point the plugin at it: vim.lsp.config('needle', { cmd = { '/path/to/.venv/bin/needle', 'lsp' } })",
      })
    end
  end

  for _, client in ipairs(vim.lsp.get_clients({ name = 'needle' })) do
    check_client(client)
  end
end

return M
