-- Needle, local semantic code search, as a language server for `vim.lsp.enable('needle')` (Neovim 0.11+).
-- Override any field with `vim.lsp.config('needle', { cmd = { '/path/to/needle', 'lsp' } })`.
---@type vim.lsp.Config
return {
  cmd = { 'needle', 'lsp' },
  -- Search is repository-wide: attach to every file buffer (no `filetypes`).
  root_markers = require('needle.config').root_markers,
  -- The nearest root marker. With none, nothing starts (:NeedleStatus and :checkhealth say why): a stray
  -- file opened from $HOME must not index the home folder. Buffers that are not files on disk start nothing.
  root_dir = function(bufnr, on_dir)
    local config = require('needle.config')
    if config.is_disk_file(bufnr) then
      local resolved = vim.lsp.config.needle or {}
      local root = config.root_for(bufnr, resolved.root_markers)
      if root then
        on_dir(root)
      end
    end
  end,
  -- Server settings go under `settings = { needle = { ... } }` (model, indexDir, exclude, ...).
}
