-- Needle, local semantic code search, as a language server for `vim.lsp.enable('needle')` (Neovim 0.11+).
-- Override any field with `vim.lsp.config('needle', { cmd = { '/path/to/needle', 'lsp' } })`.
---@type vim.lsp.Config
return {
  cmd = { 'needle', 'lsp' },
  -- Search is repository-wide: attach to every file buffer (no `filetypes`).
  root_markers = require('needle.config').root_markers,
  -- Nearest root marker, else the cwd (without a root Neovim would send `rootUri = null`).
  -- Buffers that are not files on disk (no name, `scheme://` names) start nothing.
  root_dir = function(bufnr, on_dir)
    local config = require('needle.config')
    if config.is_disk_file(bufnr) then
      local resolved = vim.lsp.config.needle or {}
      on_dir(config.root_for(bufnr, resolved.root_markers))
    end
  end,
  -- Server settings go under `settings = { needle = { ... } }` (model, indexDir, exclude, ...).
}
