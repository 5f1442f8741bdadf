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
---@field root_markers string[] Root markers; with none above a file, nothing is indexed for it.
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

--- Why the server was not started for a file (no root marker above it), for :NeedleStatus and :checkhealth.
---@type string?
M.no_root_reason = nil

--- The project root for a buffer: the nearest folder holding a root marker, else nil. Without a marker
--- nothing is indexed: falling back to the cwd would index $HOME when a stray file is opened from there.
---@param bufnr integer
---@param markers string[]?
---@return string?
function M.root_for(bufnr, markers)
  markers = markers or M.options.root_markers or M.root_markers
  local root = vim.fs.root(bufnr, markers)
  if not root then
    local name = vim.api.nvim_buf_get_name(bufnr)
    M.no_root_reason = string.format(
      'not indexing: no project root marker (%s) in any folder above %s. Open a file inside a project, or run '
        .. '`needle index <folder>` there (it creates .needle/, a root marker).',
      table.concat(vim.list_slice(markers, 1, 6), ', ') .. (#markers > 6 and ', ...' or ''),
      name ~= '' and vim.fn.fnamemodify(name, ':~') or 'this buffer'
    )
  end
  return root
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
