-- `needle.opened`: tell the server which search result was opened and which were listed above it. The server
-- appends it to a local log in the index folder (opt-out: the `feedback = false` setting of the `needle`
-- section); the server learns from it (a query adapter, refitted after a few opens) and so does
-- `needle train --repo`. Nothing leaves the machine.
local M = {}

local MAX_ABOVE = 20

--- The query of a search list title (`Needle: {query}`) without its inline filters (`lang:`, `glob:`: the log
--- keeps the words, as VS Code's does), or nil for other lists (similar code).
---@param title string?
---@return string?
function M.query_of(title)
  if type(title) ~= 'string' or not vim.startswith(title, 'Needle: ') then
    return nil
  end
  local q = require('needle').parse_query(title:sub(#'Needle: ' + 1)).query
  return q ~= '' and q or nil
end

--- `needle.opened` arguments for items[index] (quickfix items whose user_data is the server's result).
---@param query string
---@param items vim.quickfix.entry[]
---@param index integer
---@return table?
function M.arguments(query, items, index)
  local opened = items[index] and items[index].user_data
  if type(opened) ~= 'table' or not opened.uri then
    return nil
  end
  local above = {}
  for i = math.max(1, index - MAX_ABOVE), index - 1 do
    local r = items[i].user_data
    if type(r) == 'table' and r.uri then
      above[#above + 1] = { uri = r.uri, line = r.range.start.line }
    end
  end
  return { query = query, uri = opened.uri, line = opened.range.start.line, name = opened.name, above = above }
end

--- Report items[index] of the list titled `title` as opened (searches only; errors are ignored: recording
--- must never get in the way of opening code).
---@param title string
---@param items vim.quickfix.entry[]
---@param index integer?
function M.report(title, items, index)
  local query = M.query_of(title)
  local args = query and index and M.arguments(query, items, index)
  if args then
    require('needle').execute('needle.opened', args, function() end)
  end
end

--- In the quickfix window of a Needle search, <CR> reports the entry under the cursor, then jumps as usual.
--- The list is read when the key is pressed (the window outlives the search that opened it).
---@param title string
function M.map_quickfix(title)
  if not M.query_of(title) or vim.bo.buftype ~= 'quickfix' then
    return
  end
  vim.keymap.set('n', '<CR>', function()
    local index = vim.fn.line('.')
    local list = vim.fn.getqflist({ title = 1, items = 1 })
    M.report(list.title, list.items, index)
    vim.cmd(index .. 'cc')
  end, { buffer = true, desc = 'Needle: open the result (and remember the choice)' })
end

--- The index of `item` in `items` (the entry vim.ui.select handed back).
---@param items vim.quickfix.entry[]
---@param item vim.quickfix.entry
---@return integer?
function M.index_of(items, item)
  for i, it in ipairs(items) do
    if it == item then
      return i
    end
  end
  return nil
end

return M
