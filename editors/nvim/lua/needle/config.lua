--- Needle's options and root detection, shared by `lsp/needle.lua` and `require('needle').setup()`.
local M = {}

--- Files or folders that mark a project root, searched upwards from the buffer's file.
M.root_markers = {
  '.git',
  '.hg',
  '.needle',
  'pyproject.toml',
  'setup.py',
  'package.json',
  'go.mod',
  'Cargo.toml',
  'pom.xml',
  'build.gradle',
  'Gemfile',
  'Makefile',
}

---@class needle.Options
---@field cmd string[] Command that runs the language server (default `{ 'needle', 'lsp' }`).
---@field root_markers string[] Root markers; the cwd is used when none is found.
---@field filetypes string[]? Filetypes to attach to (nil: every file buffer).
---@field settings table Server settings, sent as `initializationOptions` and under `workspace/configuration` `needle`.
---@field picker 'quickfix'|'telescope'|'fzf-lua'|'select'|'auto' How `:Needle` shows results (quickfix is always filled).
---@field k integer Number of results `:Needle` and `:NeedleSimilar` ask for.
---@field progress 'echo'|'notify'|false How indexing progress (`LspProgress`) is shown.
---@field autostart boolean Start the server for file buffers (setup() only).
---@field native boolean? Use `vim.lsp.config`/`vim.lsp.enable` (0.11+); false forces the `vim.lsp.start` path.
M.defaults = {
  cmd = { 'needle', 'lsp' },
  root_markers = M.root_markers,
  filetypes = nil,
  settings = {},
  picker = 'quickfix',
  k = 20,
  progress = 'echo',
  autostart = true,
  native = nil,
}

---@type needle.Options
M.options = vim.deepcopy(M.defaults)

--- Merge user options over the defaults.
---@param opts table?
---@return needle.Options
function M.set(opts)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  M.configured = true
  return M.options
end

--- Whether a buffer holds a file on disk (named, normal buftype, no `scheme://` name).
---@param bufnr integer
---@return boolean
function M.is_disk_file(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  return vim.bo[bufnr].buftype == '' and name ~= '' and not name:match('^%a[%w+.-]*://')
end

--- The project root for a buffer: the nearest folder holding a root marker, else the cwd.
---@param bufnr integer
---@param markers string[]?
---@return string
function M.root_for(bufnr, markers)
  local root = vim.fs.root(bufnr, markers or M.options.root_markers or M.root_markers)
  return root or vim.fn.getcwd()
end

--- The `cmd` in effect: setup()'s, else the one `vim.lsp.config` resolved, else the default.
---@return string[]|function
function M.cmd()
  if not M.configured and vim.lsp.config then
    local ok, resolved = pcall(function()
      return vim.lsp.config.needle
    end)
    if ok and resolved and resolved.cmd then
      return resolved.cmd
    end
  end
  return M.options.cmd
end

return M
