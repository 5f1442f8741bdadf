--- Needle for Neovim: semantic code search through the `needle lsp` language server.
---
--- Neovim 0.11+: `vim.lsp.enable('needle')` (config in `lsp/needle.lua`). Any version >= 0.10:
--- `require('needle').setup({ ... })`. Commands: `:Needle {query}`, `:NeedleSimilar`, `:NeedleReindex`,
--- `:NeedleCancel`, `:NeedleStatus` (defined in `plugin/needle.lua`).
local config = require('needle.config')

local M = {}

local api = vim.api
local levels = vim.log.levels
local has_011 = vim.fn.has('nvim-0.11') == 1

--- The latest progress line, for statuslines: `require('needle').progress()`.
local progress_line = ''
local progress_titles = {} ---@type table<string, string>
local cancellable = {} ---@type table<string, {client_id: integer, token: integer|string}> the indexing :NeedleCancel can stop

---@param msg string
---@param level integer?
local function notify(msg, level)
  vim.notify('Needle: ' .. msg, level or levels.INFO, { title = 'Needle' })
end

--- `client:request` on 0.11+, the dot form 0.10 expects.
---@param client vim.lsp.Client
local function request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return client.request(method, params, handler, bufnr)
end

--- `client:request_sync` on 0.11+, the dot form 0.10 expects.
---@param client vim.lsp.Client
---@return {err: lsp.ResponseError?, result: any}?, string?
local function request_sync(client, method, params, timeout_ms, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return client.request_sync(method, params, timeout_ms, bufnr)
end

--- `client:notify` on 0.11+, the dot form 0.10 expects (there the colon form sends the client as the method).
---@param client vim.lsp.Client
local function notify_server(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return client.notify(method, params)
end

--- `client:is_stopped()` on 0.11+, the dot form 0.10 expects.
---@param client vim.lsp.Client
---@return boolean
local function is_stopped(client)
  if has_011 then
    return client:is_stopped()
  end
  ---@diagnostic disable-next-line: missing-parameter
  return client.is_stopped()
end

--- `workspace/executeCommand` params: `arguments` is a list holding one object (`{}` must stay an object).
---@param command string
---@param args table?
local function command_params(command, args)
  if args == nil or next(args) == nil then
    args = vim.empty_dict()
  end
  return { command = command, arguments = { args } }
end

local is_file_buffer = config.is_disk_file

--- The server part of the options as `vim.lsp` config fields (no empty settings: `{}` would encode as `[]`).
---@param o needle.Options
---@return table
local function server_config(o)
  local cfg = { cmd = o.cmd, root_markers = o.root_markers, filetypes = o.filetypes }
  if o.settings and next(o.settings) ~= nil then
    cfg.settings = { needle = o.settings }
    cfg.init_options = o.settings
  end
  return cfg
end

--- Set options and start the server for file buffers.
---@param opts needle.Options|table|nil
function M.setup(opts)
  local o = config.set(opts)
  if not o.autostart then
    return
  end
  local native = o.native
  if native == nil then
    native = has_011 and vim.lsp.config ~= nil
  end
  if native then
    vim.lsp.config('needle', server_config(o))
    vim.lsp.enable('needle')
    return
  end
  local group = api.nvim_create_augroup('needle.start', { clear = true })
  local function maybe_start(ev)
    if is_file_buffer(ev.buf) then
      M.start(ev.buf)
    end
  end
  if o.filetypes then
    api.nvim_create_autocmd('FileType', { group = group, pattern = o.filetypes, callback = maybe_start })
  else
    api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, { group = group, callback = maybe_start })
  end
  -- Buffers opened before setup() ran (lazy loading).
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) and is_file_buffer(buf) then
      if not o.filetypes or vim.tbl_contains(o.filetypes, vim.bo[buf].filetype) then
        M.start(buf)
      end
    end
  end
end

--- The client config `vim.lsp.start` gets: `vim.lsp.config.needle` when only that is configured, else setup()'s.
---@param bufnr integer
---@return vim.lsp.ClientConfig
function M.client_config(bufnr)
  local o = config.options
  local cfg ---@type table?
  if not config.configured and vim.lsp.config then
    local ok, resolved = pcall(function()
      return vim.lsp.config.needle
    end)
    if ok and resolved then
      cfg = vim.deepcopy(resolved)
    end
  end
  cfg = cfg or server_config(o)
  cfg.name = 'needle'
  cfg.root_dir = config.root_for(bufnr, cfg.root_markers or o.root_markers)
  return cfg
end

--- Start (or reuse) the server for a buffer's project with `vim.lsp.start`; returns the client id, or nil
--- when the buffer has no project root marker (nothing is indexed then; `config.no_root_reason` says why).
---@param bufnr integer?
---@return integer?
function M.start(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local cfg = M.client_config(bufnr)
  if not cfg.root_dir then
    return nil
  end
  return vim.lsp.start(cfg, { bufnr = bufnr, attach = is_file_buffer(bufnr) })
end

--- The buffer whose project a server started now would index: the current one if it is a project's file, else
--- the alternate file, then the files shown in this tab's windows, then any listed file (a search typed in the
--- quickfix window after the server stopped is for the project open beside it).
---@return integer
local function project_buffer()
  local current = api.nvim_get_current_buf()
  local candidates = { current, vim.fn.bufnr('#') }
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    candidates[#candidates + 1] = api.nvim_win_get_buf(win)
  end
  for _, info in ipairs(vim.fn.getbufinfo({ buflisted = 1 })) do
    candidates[#candidates + 1] = info.bufnr
  end
  for _, bufnr in ipairs(candidates) do
    if bufnr > 0 and api.nvim_buf_is_valid(bufnr) and is_file_buffer(bufnr) and M.client_config(bufnr).root_dir then
      return bufnr
    end
  end
  M.client_config(current) -- sets why nothing can be indexed from here
  return current
end

--- The Needle client for a buffer: the one attached to it, else the one of the project beside it (a search typed
--- in the quickfix list or a help window is for the file open next to it, not for whichever server started first),
--- else any running one.
---@param bufnr integer?
---@return vim.lsp.Client?
function M.client(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local clients = vim.lsp.get_clients({ bufnr = bufnr, name = 'needle' })
  if #clients == 0 and bufnr == api.nvim_get_current_buf() then
    clients = vim.lsp.get_clients({ bufnr = project_buffer(), name = 'needle' })
  end
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = 'needle' })
  end
  return clients[1]
end

--- Call `fn(client)` once a Needle client is running and initialized, starting one if needed.
---@param fn fun(client: vim.lsp.Client)
function M.with_client(fn)
  local client = M.client()
  if not client then
    local id = M.start(project_buffer())
    client = id and vim.lsp.get_client_by_id(id) or nil
  end
  if not client then
    if config.no_root_reason then
      notify(config.no_root_reason, levels.WARN)
    else
      notify('cannot start the language server; see :checkhealth needle', levels.ERROR)
    end
    return
  end
  local deadline = vim.uv.now() + 20000
  local function go()
    if client.initialized then
      fn(client)
    elseif is_stopped(client) then
      notify('the language server stopped; see :checkhealth needle and :LspLog', levels.ERROR)
    elseif vim.uv.now() > deadline then
      notify('the language server did not start in time', levels.ERROR)
    else
      vim.defer_fn(go, 50)
    end
  end
  go()
end

--- Run a `needle.*` command on the server; `handler(err, result, client)` runs on the main loop.
---@param command string
---@param args table?
---@param handler fun(err: lsp.ResponseError?, result: any, client: vim.lsp.Client)
function M.execute(command, args, handler)
  local bufnr = api.nvim_get_current_buf()
  M.with_client(function(client)
    request(client, 'workspace/executeCommand', command_params(command, args), function(err, result)
      handler(err, result, client)
    end, bufnr)
  end)
end

--- Like `M.execute`, but waits: returns `result, err`. For health checks and scripts.
---@param client vim.lsp.Client
---@param command string
---@param args table?
---@param timeout_ms integer?
---@return any, string?
function M.execute_sync(client, command, args, timeout_ms)
  local response, err = request_sync(client, 'workspace/executeCommand', command_params(command, args), timeout_ms or 5000)
  if not response then
    return nil, err or 'no response'
  end
  if response.err then
    return nil, response.err.message or vim.inspect(response.err)
  end
  return response.result, nil
end

--- Search results (`[{uri, range, name, kind, language, score, snippet, cell?}]`) as quickfix items.
---@param results table[]?
---@return vim.quickfix.entry[]
function M.to_items(results)
  local items = {}
  for _, r in ipairs(results or {}) do
    local start, stop = r.range.start, r.range['end']
    items[#items + 1] = {
      filename = vim.uri_to_fname(r.uri),
      lnum = start.line + 1,
      col = start.character + 1,
      end_lnum = stop.line + 1,
      -- "weak" below the server's good-match line: one real hit padded with near-misses must not look like ten
      -- a notebook hit opens at its JSON line; the cell and its line there are what the notebook shows
      -- The name is the indexed code's (a heading, a file name): a line break in it would make two lines of one
      -- hit in Telescope and fzf-lua, and an escape sequence reach the terminal through fzf; shown as Neovim
      -- shows them in a buffer (^@, ^[, <202e>). user_data keeps the exact result.
      text = string.format('%s %s  (%s, %.3f%s%s)', r.kind or '', vim.fn.strtrans(r.name or ''), r.language or '',
        r.score or 0, r.weak == true and ', weak' or '',
        type(r.cell) == 'table' and string.format('; cell %d, line %d', r.cell.index + 1, r.cell.range.start.line + 1)
          or ''),
      user_data = r,
    }
  end
  return items
end

---@param item vim.quickfix.entry
local function jump(item)
  if vim.bo.buftype == 'quickfix' then
    vim.cmd('wincmd p')
  end
  vim.cmd.edit(vim.fn.fnameescape(item.filename))
  api.nvim_win_set_cursor(0, { item.lnum, math.max((item.col or 1) - 1, 0) })
  vim.cmd('normal! zz')
end

--- Fill the quickfix list, then show it with the configured picker.
---@param title string
---@param items vim.quickfix.entry[]
function M.show(title, items)
  vim.fn.setqflist({}, ' ', { title = title, items = items })
  if #items == 0 then
    notify('no results for ' .. title:gsub('^Needle[^:]*: ', ''), levels.WARN)
    return
  end
  local picker = config.options.picker
  if picker == 'auto' then
    picker = (pcall(require, 'telescope.builtin') and 'telescope')
      or (pcall(require, 'fzf-lua') and 'fzf-lua')
      or 'quickfix'
  end
  -- A picker that is not installed (or a misspelt one) says so once, rather than quietly showing the quickfix list.
  local module = ({ telescope = 'telescope.builtin', ['fzf-lua'] = 'fzf-lua' })[picker]
  local ok, loaded = false, nil
  if module then
    ok, loaded = pcall(require, module)
  end
  if module and not ok then
    vim.notify_once(string.format("Needle: picker '%s' is not installed (require('%s') failed); showing the quickfix "
      .. 'list', picker, module), levels.WARN, { title = 'Needle' })
  elseif not module and picker ~= 'quickfix' and picker ~= 'select' then
    vim.notify_once(string.format("Needle: unknown picker '%s' (use 'quickfix', 'telescope', 'fzf-lua', 'select' or "
      .. "'auto'); showing the quickfix list", tostring(picker)), levels.WARN, { title = 'Needle' })
  end
  if picker == 'telescope' and ok then
    return loaded.quickfix({ prompt_title = title })
  elseif picker == 'fzf-lua' and ok then
    return loaded.quickfix({ prompt = title .. '> ' })
  elseif picker == 'select' then
    return vim.ui.select(items, {
      prompt = title,
      -- One line per choice: a file name with a line break printed two lines in the numbered list, the second
      -- one forged by the name (and an escape sequence went to the screen as it is).
      format_item = function(item)
        return string.format('%s:%d  %s', vim.fn.strtrans(vim.fn.fnamemodify(item.filename, ':~:.')), item.lnum,
          vim.fn.strtrans(item.text))
      end,
    }, function(choice)
      if choice then
        require('needle.feedback').report(title, items, require('needle.feedback').index_of(items, choice))
        jump(choice)
      end
    end)
  end
  vim.cmd('botright copen')
  require('needle.feedback').map_quickfix(title)
end

--- A server object without its JSON nulls: they decode to `vim.NIL`, which is truthy, so `f.model or '?'` would
--- show "vim.NIL" (a folder that is still starting has no model or last update yet).
---@param t any
---@return table
local function plain(t)
  local out = {}
  for key, value in pairs(type(t) == 'table' and t or {}) do
    if value ~= vim.NIL then
      out[key] = value
    end
  end
  return out
end

--- "Still indexing" with how far it got, from a `needle.status` answer; nil when no folder is indexing.
---@param status table?
---@return string?
function M.indexing_note(status)
  if type(status) ~= 'table' or (status.state ~= 'indexing' and status.state ~= 'starting') then
    return nil
  end
  local parts = {}
  for _, f in ipairs(status.folders or {}) do
    if f.state == 'indexing' or f.state == 'starting' then
      local p = plain(f.progress)
      if p.phase == 'embed' and (p.chunksToEmbed or 0) > 0 then
        -- every file is read by then ("101 of 101 files"), yet embedding is most of the wait
        parts[#parts + 1] = string.format('%s: %d of %d chunks embedded', vim.fn.fnamemodify(M.folder_root(f.root),
          ':t'), p.chunksEmbedded or 0, p.chunksToEmbed)
      elseif (p.filesTotal or 0) > 0 then
        parts[#parts + 1] = string.format('%s: %d of %d files', vim.fn.fnamemodify(M.folder_root(f.root), ':t'),
          p.filesDone or 0, p.filesTotal)
      else
        parts[#parts + 1] = string.format('%s: %s', vim.fn.fnamemodify(M.folder_root(f.root), ':t'), f.state)
      end
    end
  end
  return 'still indexing (' .. (#parts > 0 and table.concat(parts, '; ') or 'starting')
    .. '); results cover what is indexed so far'
end

---@param what string
---@param client_for_status boolean? ask needle.status when the answer is empty or weak (searches)
---@return fun(err: lsp.ResponseError?, result: any, client: vim.lsp.Client?)
-- Answers shown so far: a status round trip that lands after a newer answer must not replace that answer's list.
local answers_shown = 0

local function results_handler(what, client_for_status)
  return function(err, result, client)
    answers_shown = answers_shown + 1
    local this_answer = answers_shown
    if err then
      notify(err.message or vim.inspect(err), levels.ERROR)
      return
    end
    local items = M.to_items(result)
    local weak = #items > 0 and vim.iter(result):all(function(r)
      return r.weak == true
    end)
    if client_for_status and client and (#items == 0 or weak) then
      -- An empty or weak answer during the first index means "not indexed yet", not "nothing matches".
      request(client, 'workspace/executeCommand', command_params('needle.status', nil), function(_, status)
        if this_answer ~= answers_shown then
          return -- a newer search or :NeedleSimilar has been answered meanwhile: its list stays
        end
        local note = M.indexing_note(status)
        if note then
          notify(note, levels.WARN)
        elseif weak then
          notify('no good match: nothing scores high; these are the nearest', levels.WARN)
        end
        if #items > 0 or not note then
          M.show(what, items)
        else
          vim.fn.setqflist({}, ' ', { title = what, items = items })
        end
      end)
      return
    end
    M.show(what, items)
  end
end

--- Split inline filters off a typed query, as the VS Code extension does:
--- `lang:python kind:function glob:src/** glob:!dist/** in:src/net parse a config file` ->
--- `{query = 'parse a config file', lang = 'python', kind = 'function', glob = 'src/**', exclude = {'dist/**'},
--- within = {'src/net'}}`. `in:` names a folder or file (from the current folder; `in:%:h` is the current file's).
---@param text string
---@return {query: string, lang: string?, kind: string?, glob: string?, exclude: string[]?, within: string[]?}
function M.parse_query(text)
  local out, words, exclude, within = { query = '' }, {}, {}, {}
  for tok in vim.gsplit(vim.trim(text), '%s+', { trimempty = true }) do
    local key, value = tok:match('^(%a+):(.+)$')
    if key == 'in' then
      within[#within + 1] = value
    elseif key == 'lang' then
      out.lang = value
    elseif key == 'kind' then
      out.kind = value
    elseif key == 'glob' and value:sub(1, 1) == '!' then
      exclude[#exclude + 1] = value:sub(2)
    elseif key == 'glob' then
      out.glob = value
    else
      words[#words + 1] = tok
    end
  end
  out.query = table.concat(words, ' ')
  out.exclude = #exclude > 0 and exclude or nil
  out.within = #within > 0 and within or nil
  return out
end

--- A folder or file as `in:` writes it (`src/net`, `~/x`, `%:h`, `%`) -> its file URI; nil for `%` or `#` of a
--- buffer with no file, which would otherwise expand to '' and so to the current folder.
---@param path string
---@return string?
local function path_uri(path)
  local expanded = path:match('^[%%#~]') and vim.fn.expand(path) or path
  if expanded == '' then
    return nil
  end
  local full = vim.fs.normalize(vim.fn.fnamemodify(expanded, ':p'))
  return vim.uri_from_fname((full:gsub('(.)/$', '%1')))
end

--- `:Needle {query}`: semantic search into the quickfix list. Inline filters in the query (`lang:python`,
--- `kind:function`, `glob:src/**`, `glob:!dist/**`, `in:src/net`) or `opts`: `k`, `lang` ("python,go"), `kind`
--- ("function,method", "class", "def"), `glob`, `exclude` (list of globs), `within` (folders or files to search in).
---@param query string?
---@param opts {k: integer?, lang: string?, kind: string?, glob: string?, exclude: string[]?, within: string[]?}?
function M.search(query, opts)
  if not query or vim.trim(query) == '' then
    vim.ui.input({ prompt = 'Needle: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        M.search(input, opts)
      end
    end)
    return
  end
  opts = opts or {}
  local q = M.parse_query(query)
  if q.query == '' then
    notify('only filters given: add words describing the code, e.g. `lang:python parse a config file`', levels.WARN)
    return
  end
  local args = {
    query = q.query, k = opts.k or config.options.k, lang = opts.lang or q.lang, kind = opts.kind or q.kind,
    glob = opts.glob or q.glob, exclude = opts.exclude or q.exclude,
  }
  local within = opts.within or q.within
  if within and #within > 0 then -- an empty list would be sent as `[]`: no folder at all
    args.within = {}
    for _, path in ipairs(within) do
      local uri = path_uri(path)
      if not uri then
        notify(string.format('in:%s names no file (this buffer has none); give a folder, e.g. in:src', path), levels.WARN)
        return
      end
      args.within[#args.within + 1] = uri
    end
  end
  M.execute('needle.search', args, results_handler('Needle: ' .. query, true))
end

--- `:NeedleSimilar`: code most like the function under the cursor.
function M.similar()
  local bufnr = api.nvim_get_current_buf()
  if not is_file_buffer(bufnr) then
    notify('put the cursor in a file', levels.WARN)
    return
  end
  local label = string.format('%s:%d', vim.fn.expand('%:~:.'), api.nvim_win_get_cursor(0)[1])
  M.with_client(function(client)
    local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
    local args = { uri = params.textDocument.uri, position = params.position, k = config.options.k }
    if vim.bo[bufnr].modified then
      -- The saved file's lines would point at another function: the server reads the buffer's own text instead.
      args.text = table.concat(api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n') .. '\n'
    end
    request(client, 'workspace/executeCommand', command_params('needle.similar', args),
      results_handler('Needle similar: ' .. label), bufnr)
  end)
end

--- `:NeedleReindex`: rebuild the index of the current buffer's folder (all folders when not in a file).
function M.reindex()
  local bufnr = api.nvim_get_current_buf()
  local args = is_file_buffer(bufnr) and { uri = vim.uri_from_bufnr(bufnr) } or nil
  M.execute('needle.reindex', args, function(err)
    if err then
      notify(err.message or vim.inspect(err), levels.ERROR)
    else
      notify('reindexing started')
    end
  end)
end

---@param skipped any
---@return string
local function format_skipped(skipped)
  if type(skipped) ~= 'table' then
    return tostring(skipped or 0)
  end
  local parts = {}
  for reason, n in vim.spairs(skipped) do
    parts[#parts + 1] = string.format('%s %s', reason, n)
  end
  return #parts > 0 and table.concat(parts, ', ') or 'none'
end

--- A status folder's root as a path (the server may send a path or a file URI).
---@param root string?
---@return string
function M.folder_root(root)
  if type(root) == 'string' and root:match('^file://') then
    return vim.uri_to_fname(root)
  end
  return root or '?'
end

--- `needle.status` as lines for people.
---@param status table
---@return string[]
function M.format_status(status)
  local lines = { 'Needle: ' .. tostring(status.state or 'unknown') }
  local note = M.indexing_note(status) or status.message  -- why it is partial or "none", from the server
  if note then
    lines[1] = lines[1] .. ' - ' .. note
  end
  for _, folder in ipairs(status.folders or {}) do
    local f = plain(folder)
    lines[#lines + 1] = string.format(
      '  %s: %s, %s files, %s chunks, model %s',
      M.folder_root(f.root),
      f.state or status.state or '?',
      f.files or 0,
      f.chunks or 0,
      f.model or '?'
    )
    lines[#lines + 1] = string.format(
      '    index %s, last update %s, skipped: %s',
      f.indexDir or '?',
      f.lastUpdate or 'never',
      format_skipped(f.skipped)
    )
    -- why the folder is not what "ready" suggests (a read-only index is searched as it is, never updated), unless
    -- the first line says it already
    if type(f.message) == 'string' and not tostring(status.message or ''):find(f.message, 1, true) then
      lines[#lines + 1] = '    ' .. f.message
    end
    local adapter = f.queryAdapter
    if type(adapter) == 'table' and adapter.inUse == true and type(adapter.events) == 'number' then
      lines[#lines + 1] = string.format('    learned from %d opened results', adapter.events)
    end
  end
  return lines
end

--- `:NeedleStatus`: show index state per folder; `callback(status, lines)` when given.
---@param callback fun(status: table, lines: string[])?
function M.status(callback)
  if not M.client() then
    local bufnr = api.nvim_get_current_buf()
    if not is_file_buffer(bufnr) or not M.client_config(bufnr).root_dir then
      -- Nothing runs, and asking would not start anything: say why instead.
      local lines = { 'Needle: not running: ' .. (config.no_root_reason or 'open a file inside a project') }
      api.nvim_echo({ { table.concat(lines, '\n') } }, true, {})
      if callback then
        callback({ state = 'not running', folders = {} }, lines)
      end
      return
    end
  end
  M.execute('needle.status', nil, function(err, result)
    if err then
      notify(err.message or vim.inspect(err), levels.ERROR)
      return
    end
    local lines = M.format_status(result or {})
    api.nvim_echo({ { table.concat(lines, '\n') } }, true, {})
    if callback then
      callback(result, lines)
    end
  end)
end

--- The current indexing progress line ('' when idle), for statuslines.
---@return string
function M.progress()
  return progress_line
end

--- `:NeedleCancel`: stop the indexing in progress (every cancellable one of every Needle server). What was indexed
--- so far stays searchable (the index is "partial"); `:NeedleReindex` goes on from there.
function M.cancel()
  local sent = 0
  for key, active in pairs(cancellable) do
    local client = vim.lsp.get_client_by_id(active.client_id)
    if client and not is_stopped(client) then
      notify_server(client, 'window/workDoneProgress/cancel', { token = active.token })
      sent = sent + 1
    end
    cancellable[key] = nil
  end
  if sent == 0 then
    notify('nothing is being indexed', levels.INFO)
  else
    notify('indexing cancelled: what was indexed so far is searchable; :NeedleReindex goes on', levels.INFO)
  end
end

--- `LspProgress` handler: show the Needle server's `$/progress` (echo or vim.notify, per `progress`).
---@param ev {data: {client_id: integer, params: {token: any, value: any}}}
function M.on_progress(ev)
  local data = ev.data or {}
  local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
  if not client or client.name ~= 'needle' then
    return
  end
  local value = data.params and data.params.value
  if type(value) ~= 'table' or not value.kind then
    return
  end
  -- Each project's server numbers its tokens from `needle-1`: the client tells two servers' progress apart.
  local token = client.id .. ':' .. tostring(data.params.token)
  if value.title then
    progress_titles[token] = value.title
  end
  if value.kind == 'begin' and value.cancellable then
    cancellable[token] = { client_id = client.id, token = data.params.token }
  elseif value.kind == 'end' then
    cancellable[token] = nil
  end
  local title = progress_titles[token] or 'indexing'
  local msg = title:match('^[Nn]eedle') and title or ('Needle: ' .. title)
  if value.message then
    msg = msg .. ': ' .. value.message
  end
  if value.percentage then
    msg = string.format('%s (%d%%)', msg, value.percentage)
  end
  if value.kind == 'end' then
    progress_titles[token] = nil
    progress_line = ''
  else
    progress_line = msg
  end
  local mode = config.options.progress
  if mode == 'notify' then
    vim.notify(msg, levels.INFO, { title = 'Needle', id = 'needle.progress', replace = 'needle.progress' })
  elseif mode == 'echo' then
    api.nvim_echo({ { msg } }, false, {})
  end
end

return M
