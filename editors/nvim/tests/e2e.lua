-- End-to-end check of the Needle plugin in a real headless Neovim against a real `needle lsp`.
-- Driven by tests/test_nvim_plugin.py; by hand:
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -l editors/nvim/tests/e2e.lua \
--     '["/path/to/needle","lsp"]' /path/to/repo enable|setup fresh|warm
-- Exits 0 when every check passes; `cquit 1` on the first failure.
local cmd = vim.json.decode(arg[1])
local repo = vim.uv.fs_realpath(arg[2])
local mode = arg[3] or 'enable'
local fresh = arg[4] == 'fresh'

local function say(msg)
  io.stdout:write(msg .. '\n')
end

local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  io.stderr:write(vim.api.nvim_exec2('messages', { output = true }).output .. '\n')
  vim.cmd('cquit 1')
end

local function check(cond, msg, detail)
  if not cond then
    fail(msg .. (detail ~= nil and (': ' .. vim.inspect(detail)) or ''))
  end
  say('ok - ' .. msg)
end

--- Wait (pumping the event loop) until `cond()` is truthy; returns its value.
local function wait_for(what, timeout_ms, cond)
  local value
  local ok = vim.wait(timeout_ms, function()
    value = cond()
    return value and true or false
  end, 50)
  check(ok, what)
  return value
end

local function messages()
  return vim.api.nvim_exec2('messages', { output = true }).output
end

local function run()
  check(vim.fn.exists(':Needle') == 2 and vim.fn.exists(':NeedleStatus') == 2, 'plugin commands defined')
  -- The repository is a project: `.needle/` (where its index goes) is a root marker. Created here so the
  -- by-hand recipe works on a plain copy of the fixture.
  vim.fn.mkdir(repo .. '/.needle', 'p')
  -- A folder with no root marker above it, for stray files.
  local stray_dir = vim.fn.tempname()
  vim.fn.mkdir(stray_dir, 'p')
  stray_dir = vim.uv.fs_realpath(stray_dir)

  -- Progress as the user would see it: the standard LspProgress event.
  local progress = {}
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == 'needle' then
        progress[ev.data.params.value.kind] = (progress[ev.data.params.value.kind] or 0) + 1
      end
    end,
  })

  local needle = require('needle')
  if mode == 'enable' then
    vim.lsp.config('needle', { cmd = cmd })
    vim.lsp.enable('needle')
    -- A stray file with no project root marker above it starts nothing, and both reports say why.
    vim.cmd.edit(vim.fn.fnameescape(stray_dir .. '/notes.py'))
    vim.wait(1500)
    check(#vim.lsp.get_clients({ name = 'needle' }) == 0, 'no root marker: no server started, nothing indexed')
    check(vim.fn.isdirectory(stray_dir .. '/.needle') == 0, 'no root marker: no index created')
    vim.cmd('NeedleStatus')
    check(messages():find('Needle: not running: not indexing: no project root marker', 1, true) ~= nil,
      ':NeedleStatus says why nothing is indexed', messages())
    vim.cmd('checkhealth needle')
    local stray_report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    check(stray_report:find('no project root: not indexing', 1, true) ~= nil, ':checkhealth says why', stray_report)
    pcall(vim.cmd, 'tabclose')
    vim.cmd.edit(vim.fn.fnameescape(repo .. '/src/config/loader.py'))
  else
    -- A file opened before setup() (lazy loading); the index exists from an earlier run.
    vim.cmd.edit(vim.fn.fnameescape(repo .. '/src/config/loader.py'))
    require('needle.config').set({ cmd = cmd })
    vim.cmd('checkhealth needle')
    local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    say(report)
    check(report:find('index ready for ' .. repo, 1, true) ~= nil, 'health without a server: index ready (CLI)')
    check(report:find('no Needle language server is running', 1, true) ~= nil, 'health without a server: says so')
    vim.cmd('tabclose')
    needle.setup({ cmd = cmd, native = false })
  end
  local client = wait_for('needle client started and initialized', 30000, function()
    return needle.client()
  end)
  check(client.name == 'needle', 'client is named needle')
  check(client.root_dir == repo, 'root from the root marker', client.root_dir)
  check(vim.lsp.buf_is_attached(0, client.id), 'client attached to the opened file')
  local loose = vim.fn.bufadd(stray_dir .. '/loose.py')
  check(require('needle.config').root_for(loose) == nil, 'no root marker: no root (not the cwd)')

  -- "Still indexing", with how far, instead of "no results" during the first index.
  local note = needle.indexing_note({
    state = 'indexing', folders = { { root = repo, state = 'indexing', progress = { filesDone = 3, filesTotal = 7 } } },
  })
  check(note == 'still indexing (' .. vim.fn.fnamemodify(repo, ':t') .. ': 3 of 7 files); results cover what is indexed so far',
    'indexing note says how far', note)
  check(needle.indexing_note({ state = 'ready', folders = {} }) == nil, 'no indexing note when ready')
  if fresh then
    -- Right after start the first index is still being built: an empty answer must say so.
    local early = needle.execute_sync(client, 'needle.status', nil, 2000)
    if early and (early.state == 'indexing' or early.state == 'starting') then
      vim.cmd('Needle zzqx blorf')
      wait_for('search during the first index says still indexing (or answers)', 30000, function()
        return messages():find('still indexing', 1, true) or #vim.fn.getqflist() > 0
      end)
      say('info - search during the first index: ' .. (messages():find('still indexing', 1, true) and 'still indexing' or 'answered'))
    end
  end

  local status
  wait_for('index ready (needle.status)', 180000, function()
    status = needle.execute_sync(client, 'needle.status', nil, 2000)
    return status and status.state == 'ready' and status.folders[1] and (status.folders[1].chunks or 0) > 0
  end)
  check(vim.uv.fs_realpath(needle.folder_root(status.folders[1].root)) == repo, 'status names the workspace root', status.folders[1])
  if fresh then
    wait_for('$/progress begin and end seen through LspProgress', 10000, function()
      return progress['begin'] and progress['end']
    end)
    check(needle.progress() == '', 'progress line cleared after end')
  end

  -- The warm run reuses the folder of the fresh one: forget what that run opened, or its last choice for this
  -- query would come first (the same query again puts what was opened first).
  local log = repo .. '/.needle/feedback.jsonl'
  vim.fn.delete(log)

  -- :Needle fills the quickfix list and opens it.
  local query = 'parse a config file'
  vim.cmd('Needle ' .. query)
  local qf = wait_for(':Needle fills the quickfix list', 30000, function()
    local list = vim.fn.getqflist({ title = 1, items = 1, winid = 1 })
    return list.title == 'Needle: ' .. query and #list.items > 0 and list
  end)
  local first = qf.items[1]
  check(vim.uv.fs_realpath(vim.api.nvim_buf_get_name(first.bufnr)) == repo .. '/src/config/loader.py',
    'first hit is in src/config/loader.py', vim.api.nvim_buf_get_name(first.bufnr))
  check(first.lnum == 9, 'first hit starts at line 9 (load_json_config)', first)
  check(first.text:find('load_json_config', 1, true) ~= nil, 'quickfix text names the function', first.text)
  check(qf.winid ~= 0, 'quickfix window opened')

  vim.cmd('wincmd p')
  check(vim.api.nvim_buf_get_name(0):match('loader%.py$') ~= nil, 'back in loader.py')

  -- Inline filters are parsed, not searched for: lang: and glob: (glob:! leaves paths out).
  local parsed = needle.parse_query('lang:python kind:function glob:src/** glob:!dist/** parse  a config file')
  check(parsed.query == 'parse a config file' and parsed.lang == 'python' and parsed.kind == 'function'
    and parsed.glob == 'src/**' and parsed.exclude[1] == 'dist/**', 'inline filters parsed like VS Code', parsed)
  local function qf_files(title)
    local list = wait_for(':Needle ' .. title, 30000, function()
      local l = vim.fn.getqflist({ title = 1, items = 1 })
      return l.title == 'Needle: ' .. title and #l.items > 0 and l
    end)
    return vim.tbl_map(function(item)
      return vim.uv.fs_realpath(vim.api.nvim_buf_get_name(item.bufnr)):sub(#repo + 2)
    end, list.items)
  end
  vim.cmd('Needle lang:ruby ' .. query)
  local ruby = qf_files('lang:ruby ' .. query)
  check(vim.iter(ruby):all(function(p)
    return p:match('%.rb$') ~= nil
  end), 'lang:ruby returns only Ruby files', ruby)
  vim.cmd('Needle kind:class ' .. query)
  local classes = wait_for(':Needle kind:class', 30000, function()
    local l = vim.fn.getqflist({ title = 1, items = 1 })
    return l.title == 'Needle: kind:class ' .. query and #l.items > 0 and l
  end)
  check(vim.iter(classes.items):all(function(item)
    return vim.startswith(item.text, 'class ')
  end), 'kind:class returns only classes', vim.tbl_map(function(item) return item.text end, classes.items))
  vim.cmd('Needle glob:!src/config/** ' .. query)
  local outside = qf_files('glob:!src/config/** ' .. query)
  check(vim.iter(outside):all(function(p)
    return not vim.startswith(p, 'src/config/')
  end), 'glob:! leaves src/config out', outside)
  vim.cmd('wincmd p')

  local function events()
    local ok, lines = pcall(vim.fn.readfile, log)
    return ok and vim.tbl_map(vim.json.decode, lines) or {}
  end

  -- picker = 'select': vim.ui.select lists the hits; choosing one jumps there.
  local options = require('needle.config').options
  options.picker = 'select'
  local chosen
  local ui_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    chosen = { label = opts.format_item(items[1]), prompt = opts.prompt }
    vim.cmd('normal! gg')
    on_choice(items[1])
  end
  vim.cmd('Needle ' .. query)
  wait_for('picker select: vim.ui.select called', 30000, function()
    return chosen
  end)
  vim.ui.select, options.picker = ui_select, 'quickfix'
  check(chosen.label:find('loader.py:9', 1, true) ~= nil, 'picker select: shows path:line', chosen.label)
  check(vim.api.nvim_win_get_cursor(0)[1] == 9, 'picker select: jumped to line 9')

  -- Opening a result records (query, opened, results above it) in the index folder's feedback log.
  local picked = wait_for('picker select: the open is logged', 15000, function()
    return #events() >= 1 and events()[1]
  end)
  check(picked.query == query and picked.opened.path == 'src/config/loader.py' and picked.opened.start_line == 9
    and #picked.above == 0, 'feedback: the chosen result, nothing above it', picked)
  -- The picker search left a list with this very title: clear it, so the wait below sees the new answer (which
  -- otherwise lands later, reopens the quickfix window and takes the focus from the steps after it).
  vim.fn.setqflist({}, ' ', { title = 'cleared by the test', items = {} })
  vim.cmd('Needle lang:python ' .. query)  -- the log keeps the words, not the inline filter
  local list = wait_for('quickfix again', 30000, function()
    local l = vim.fn.getqflist({ title = 1, items = 1, winid = 1 })
    return l.title == 'Needle: lang:python ' .. query and #l.items > 1 and l.winid ~= 0 and l
  end)
  vim.fn.win_gotoid(list.winid)
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('execute "normal \\<CR>"')
  local second = wait_for('quickfix <CR>: the open is logged', 15000, function()
    return #events() >= 2 and events()[2]
  end)
  check(second.opened.start_line == list.items[2].lnum and #second.above == 1 and second.above[1].start_line == 9
    and second.query == query, 'feedback: quickfix <CR> logs the query, the entry and the one above it', second)
  check(vim.bo.buftype == '', 'quickfix <CR> still jumps to the code')
  vim.cmd.edit(vim.fn.fnameescape(repo .. '/src/config/loader.py'))

  -- :NeedleSimilar on unsaved edits: the server reads the buffer's text (the saved file's line would be another
  -- function's), so a function still being written finds the code like it.
  local edited = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(0, 0, 0, false, { '# an unsaved line' })
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { '', '', 'def load_toml_settings(path):',
    '    """Read a TOML settings file from disk."""', '    with open(path, "rb") as fh:', '        return tomllib.load(fh)' })
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0) - 1, 4 })
  vim.fn.setqflist({}, 'r', { title = 'before' })
  vim.cmd('NeedleSimilar')
  local unsaved = wait_for(':NeedleSimilar on a modified buffer fills the quickfix list', 30000, function()
    local list = vim.fn.getqflist({ title = 1, items = 1 })
    return vim.startswith(list.title, 'Needle similar: ') and #list.items > 0 and list
  end)
  local top = unsaved.items[1]
  check(vim.uv.fs_realpath(vim.api.nvim_buf_get_name(top.bufnr)) == repo .. '/src/config/loader.py' and top.lnum == 9,
    ':NeedleSimilar in an unsaved function finds load_json_config first', unsaved.items)
  check(vim.bo[edited].modified, ':NeedleSimilar leaves the unsaved edits alone')
  vim.fn.win_gotoid(vim.fn.bufwinid(edited))  -- the quickfix window took the focus
  vim.cmd('silent edit!')  -- back to the saved file
  vim.fn.setqflist({}, 'r', { title = 'before' })

  -- :NeedleSimilar from inside load_json_config.
  vim.api.nvim_win_set_cursor(0, { 11, 4 })
  vim.cmd('NeedleSimilar')
  local similar = wait_for(':NeedleSimilar fills the quickfix list', 30000, function()
    local list = vim.fn.getqflist({ title = 1, items = 1 })
    return vim.startswith(list.title, 'Needle similar: ') and #list.items > 0 and list
  end)
  local itself = vim.tbl_filter(function(item)
    local name = vim.uv.fs_realpath(vim.api.nvim_buf_get_name(item.bufnr))
    return name == repo .. '/src/config/loader.py' and item.lnum == 9
  end, similar.items)
  check(#itself == 0, 'similar excludes the function itself', itself)

  -- :NeedleStatus echoes the state per folder.
  vim.cmd('NeedleStatus')
  wait_for(':NeedleStatus shows ready, files and chunks', 10000, function()
    local out = messages()
    return out:find('Needle: ready', 1, true) and out:find(repo, 1, true) and out:find(' chunks', 1, true)
  end)

  -- :NeedleReindex starts a rebuild; the index is ready again afterwards.
  local ends = progress['end'] or 0
  vim.cmd('NeedleReindex')
  wait_for(':NeedleReindex acknowledged', 10000, function()
    return messages():find('Needle: reindexing started', 1, true)
  end)
  wait_for('reindex reported its end through $/progress', 120000, function()
    return (progress['end'] or 0) > ends
  end)
  wait_for('index ready again after reindex', 120000, function()
    local st = needle.execute_sync(client, 'needle.status', nil, 2000)
    return st and st.state == 'ready'
  end)

  -- The server goes away; a search typed in the quickfix window starts it again, for the project of the file
  -- open beside it (the quickfix buffer has no project of its own).
  client:stop(true)
  wait_for('the server stopped', 15000, function()
    return #vim.lsp.get_clients({ name = 'needle' }) == 0
  end)
  vim.cmd('copen')
  vim.fn.setqflist({}, 'r', { title = 'before the restart', items = {} })
  vim.cmd('Needle ' .. query)
  wait_for(':Needle from the quickfix window restarts the server and answers', 60000, function()
    local l = vim.fn.getqflist({ title = 1, items = 1 })
    return l.title == 'Needle: ' .. query and #l.items > 0
  end)
  client = needle.client()
  vim.cmd('cclose')

  -- :checkhealth needle.
  vim.cmd('checkhealth needle')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  say(report)
  check(report:find('is executable', 1, true) ~= nil, 'health: needle is executable')
  check(report:find('version: needle ', 1, true) ~= nil, 'health: needle version')
  check(report:find('index ready for ' .. repo, 1, true) ~= nil, 'health: index ready')
  check(report:find('ERROR', 1, true) == nil, 'health: no errors')
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  fail(tostring(err))
end
say('all checks passed')
vim.cmd('qall!')
