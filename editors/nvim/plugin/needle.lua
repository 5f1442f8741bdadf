-- Needle commands: :Needle {query}, :NeedleSimilar, :NeedleReindex, :NeedleCancel, :NeedleStatus; indexing progress
-- display.
if vim.g.loaded_needle then
  return
end
vim.g.loaded_needle = true

if vim.fn.has('nvim-0.10') == 0 then
  vim.notify_once('Needle needs Neovim 0.10 or newer', vim.log.levels.WARN)
  return
end

local command = vim.api.nvim_create_user_command

command('Needle', function(opts)
  require('needle').search(opts.args)
end, { nargs = '*', desc = 'Needle: semantic code search into the quickfix list' })

command('NeedleSimilar', function()
  require('needle').similar()
end, { nargs = 0, desc = 'Needle: code similar to the function under the cursor' })

command('NeedleReindex', function()
  require('needle').reindex()
end, { nargs = 0, desc = 'Needle: rebuild the index' })

command('NeedleCancel', function()
  require('needle').cancel()
end, { nargs = 0, desc = 'Needle: stop the indexing in progress (what was indexed stays searchable)' })

command('NeedleStatus', function()
  require('needle').status()
end, { nargs = 0, desc = 'Needle: index state' })

vim.api.nvim_create_autocmd('LspProgress', {
  group = vim.api.nvim_create_augroup('needle.progress', { clear = true }),
  desc = 'Needle: show indexing progress',
  callback = function(ev)
    require('needle').on_progress(ev)
  end,
})
