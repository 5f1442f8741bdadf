// Commands with a user interface: Search Code, Find Similar Code, Reindex, Show Status.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS, parseQuery, reindexArguments, resolveWithin, searchArguments, similarArguments, similarUnavailable } from './lib/args';
import { acceptAction, debounce, Sequencer } from './lib/debounce';
import { parseResults, resultItem } from './lib/format';
import { CELL_SCHEME, cellLabel, cellLines, cellOf, opensAsCell } from './lib/notebook';
import { namePosition, similarPosition } from './lib/position';
import { tabKey, transientTabs } from './lib/preview';
import { folderSummary, indexingNote } from './lib/status';
import type { LspRange, SearchResult } from './lib/types';
import { displayPath } from './lib/uri';
import { reportOpened } from './feedback';
import { NeedleService, workspaceFolders } from './service';

interface ResultItem extends vscode.QuickPickItem {
  result?: SearchResult;
}

const OPEN_BESIDE: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon('split-horizontal'),
  tooltip: 'Open to the Side',
};

function settings() {
  const cfg = vscode.workspace.getConfiguration('needle.search');
  return {
    k: cfg.get<number>('maxResults', 20),
    debounceMs: cfg.get<number>('debounceMs', 200),
  };
}

function toRange(r: LspRange): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

function toItems(results: SearchResult[]): ResultItem[] {
  const folders = workspaceFolders();
  return results.map((result) => ({ ...resultItem(result, folders), result, alwaysShow: true, buttons: [OPEN_BESIDE] }));
}

function messageItem(label: string, detail?: string): ResultItem {
  return { label, detail, alwaysShow: true };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isCancellation(err: unknown): boolean {
  const e = err as { code?: number; message?: string } | null;
  return !!e && (e.code === -32800 || /cancel/i.test(e.message ?? ''));
}

// The result's lines while it is previewed, as the built-in Go to Symbol highlights them.
const previewHighlight = vscode.window.createTextEditorDecorationType({
  backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
  isWholeLine: true,
});

interface ShowOptions {
  beside?: boolean;
  preview: boolean;
}

/** Shows a result: a notebook's in the notebook editor, at its cell; any other (or a notebook that cannot be
 * opened as one) in a text editor. */
async function showResult(r: SearchResult, opts: ShowOptions): Promise<void> {
  if (opensAsCell(r) && (await showCell(r, opts))) {
    return;
  }
  const editor = await vscode.window.showTextDocument(vscode.Uri.parse(r.uri), {
    viewColumn: opts.beside ? vscode.ViewColumn.Beside : undefined,
    preview: opts.preview,
    preserveFocus: opts.preview,
  });
  placeCursor(editor, editor.document.validateRange(toRange(r.range)), r.name, opts.preview);
}

/**
 * Opens a result's notebook in the notebook editor with its cell selected and in view and, in a code cell, the
 * cursor on the name as in a file. False when the notebook cannot be opened as one (no notebook support for it,
 * JSON it cannot read) or no longer has that cell: the caller shows the file's text instead.
 */
async function showCell(r: SearchResult & { cell: { index: number } }, opts: ShowOptions): Promise<boolean> {
  let notebook: vscode.NotebookDocument;
  try {
    notebook = await vscode.workspace.openNotebookDocument(vscode.Uri.parse(r.uri));
  } catch {
    return false;
  }
  const index = r.cell.index;
  if (index >= notebook.cellCount) {
    return false; // edited since it was indexed: the text editor at least shows the saved lines
  }
  const cells = new vscode.NotebookRange(index, index + 1);
  const notebookEditor = await vscode.window.showNotebookDocument(notebook, {
    viewColumn: opts.beside ? vscode.ViewColumn.Beside : undefined,
    preview: opts.preview,
    preserveFocus: opts.preview,
    selections: [cells],
  });
  notebookEditor.revealRange(cells, vscode.NotebookEditorRevealType.InCenterIfOutsideViewport);
  const cell = notebook.cellAt(index);
  if (cell.kind !== vscode.NotebookCellKind.Code) {
    return true; // a Markdown cell stays rendered: editing it to show a cursor would turn it into source
  }
  try {
    // Showing the cell's document focuses its editor inside the notebook editor shown above.
    const editor = await vscode.window.showTextDocument(cell.document, {
      viewColumn: notebookEditor.viewColumn,
      preview: opts.preview,
      preserveFocus: opts.preview,
    });
    const doc = editor.document;
    const { first, last } = cellLines(r.cell, doc.lineCount);
    placeCursor(editor, new vscode.Range(first, 0, last, doc.lineAt(last).text.length), r.name, opts.preview);
  } catch {
    // The notebook shows the cell selected; a cell editor it has not made yet only costs the cursor.
  }
  return true;
}

/** The cursor on the definition's name in `range` (nothing selected), the range in view, highlighted in preview. */
function placeCursor(editor: vscode.TextEditor, range: vscode.Range, name: string, preview: boolean): void {
  const doc = editor.document;
  const lines: string[] = [];
  for (let i = range.start.line; i <= Math.min(range.end.line, range.start.line + 40); i++) {
    lines[i] = doc.lineAt(i).text;
  }
  const at = namePosition(lines, { line: range.start.line, character: range.start.character }, name);
  const cursor = doc.validatePosition(new vscode.Position(at.line, at.character));
  // An empty selection: typing must never replace the whole function.
  editor.selection = new vscode.Selection(cursor, cursor);
  editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  editor.setDecorations(previewHighlight, preview ? [range] : []);
}

/** Opens a result's file with the cursor on the definition's name and its range in view (nothing selected). */
export async function openResult(r: SearchResult, beside = false): Promise<void> {
  await showResult(r, { beside, preview: false });
}

/** The tabs of every editor group, each with the file or notebook it shows. */
function openTabs(): { tab: vscode.Tab; uri: string | undefined; group: number; isPreview: boolean }[] {
  return vscode.window.tabGroups.all.flatMap((g) =>
    g.tabs.map((tab) => {
      const input = tab.input;
      const uri = input instanceof vscode.TabInputText || input instanceof vscode.TabInputNotebook ? input.uri.toString() : undefined;
      return { tab, uri, group: g.viewColumn, isPreview: tab.isPreview };
    }),
  );
}

function wireResultPick(qp: vscode.QuickPick<ResultItem>, onAccepted?: () => boolean, onOpened?: (r: SearchResult) => void): void {
  // Preview as the selection moves (like Quick Open and Go to Symbol); Escape goes back where the user was,
  // closing what was opened only to preview.
  const origin = vscode.window.activeTextEditor;
  const originSelection = origin?.selection;
  const openBefore = new Set(openTabs().map(tabKey));
  const previewedUris = new Set<string>();
  let previewed = false;
  let accepted = false;
  let previewSeq = 0;
  qp.onDidChangeActive((items) => {
    const r = items[0]?.result;
    if (!r) {
      return;
    }
    const id = ++previewSeq;
    setTimeout(() => {
      if (id !== previewSeq || accepted) {
        return; // arrowing fast: preview only where the selection settles
      }
      previewed = true;
      previewedUris.add(vscode.Uri.parse(r.uri).toString()); // as tabs spell it (the server encodes URIs its own way)
      showResult(r, { preview: true }).catch(() => undefined);
    }, 60);
  });
  qp.onDidHide(() => {
    previewSeq++;
    for (const e of vscode.window.visibleTextEditors) {
      e.setDecorations(previewHighlight, []);
    }
    if (previewed && !accepted) {
      const closing = transientTabs(openTabs(), openBefore, previewedUris).map((t) => t.tab);
      void Promise.resolve(closing.length ? vscode.window.tabGroups.close(closing, true) : true)
        .then(() =>
          origin
            ? vscode.window.showTextDocument(origin.document, { viewColumn: origin.viewColumn, selection: originSelection, preview: false })
            : undefined,
        )
        .then(undefined, () => undefined);
    }
  });
  qp.onDidAccept(() => {
    if (onAccepted && onAccepted()) {
      return;
    }
    const item = qp.selectedItems[0] ?? qp.activeItems[0];
    if (item?.result) {
      const r = item.result;
      accepted = true;
      onOpened?.(r);
      qp.hide();
      openResult(r).catch((err) => void vscode.window.showErrorMessage(`Needle: cannot open ${r.uri}: ${errorText(err)}`));
    }
  });
  qp.onDidTriggerItemButton((e) => {
    if (e.item.result) {
      const r = e.item.result;
      onOpened?.(r);
      openResult(r, true).catch((err) => void vscode.window.showErrorMessage(`Needle: cannot open ${r.uri}: ${errorText(err)}`));
    }
  });
}

/** A folder or file as the title names it: relative to its workspace folder (its own name for a folder's root). */
function scopeLabel(uri: vscode.Uri): string {
  const relative = vscode.workspace.asRelativePath(uri, false);
  return relative && relative !== uri.fsPath ? relative : uri.path.split('/').filter(Boolean).pop() ?? uri.fsPath;
}

/**
 * "Needle: Search in Folder": Search Code over the folders or files chosen in the Explorer (all of a multiple
 * selection), or from the command palette over the active file's folder.
 */
export async function searchInFolder(service: NeedleService, chosen?: vscode.Uri[]): Promise<void> {
  let within = chosen?.filter((u) => u.scheme === 'file');
  if (!within?.length) {
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc || doc.uri.scheme !== 'file') {
      void vscode.window.showInformationMessage('Needle: right-click a folder in the Explorer (Needle: Search in Folder), or open a file to search its folder.');
      return;
    }
    within = [vscode.Uri.joinPath(doc.uri, '..')];
  }
  await searchCode(service, undefined, within);
}

/** The folders or files typed after `in:` as URIs, from the workspace folders (see `resolveWithin`). */
function typedScope(typed: string[]): { uris: string[]; missing: string[] } {
  const folders = (vscode.workspace.workspaceFolders ?? [])
    .filter((f) => f.uri.scheme === 'file')
    .map((f) => ({ name: f.name, path: f.uri.fsPath }));
  const found = resolveWithin(typed, folders, (p) => fs.existsSync(p), (a, b) => path.join(a, b), os.homedir());
  return { uris: found.paths.map((p) => vscode.Uri.file(p).toString()), missing: found.missing };
}

/** "Needle: Search Code": a QuickPick that searches as you type; `within`: only in these folders or files. */
export async function searchCode(service: NeedleService, initial?: string, within?: vscode.Uri[]): Promise<void> {
  const { k, debounceMs } = settings();
  const scope = within?.length ? within.map((u) => u.toString()) : undefined;
  const baseTitle = within?.length ? `Needle: Search in ${within.map(scopeLabel).join(', ')}` : 'Needle: Search Code';
  const qp = vscode.window.createQuickPick<ResultItem>();
  qp.title = baseTitle;
  qp.placeholder = 'Describe the code you are looking for (filters: lang:python kind:function glob:src/** glob:!dist/** in:src/net)';
  qp.matchOnDescription = false;
  qp.matchOnDetail = false;
  qp.ignoreFocusOut = false;

  const seq = new Sequencer();
  let cts: vscode.CancellationTokenSource | undefined;
  const shown: { query: string; results: SearchResult[] } = { query: '', results: [] }; // for needle.opened

  let lastText: string | undefined; // the text searched last: setting the box's value echoes back as a change
  let shownFor: string | undefined; // the text whose results the list shows
  let searching = false;
  const run = async (text: string) => {
    lastText = text;
    const q = parseQuery(text);
    // `in:PATH` typed in the box narrows to those folders or files instead of the command's own scope
    const typed = q.within?.length ? typedScope(q.within) : undefined;
    const args = typed?.missing.length ? undefined : searchArguments(q, k, typed ? typed.uris : scope);
    cts?.cancel();
    cts?.dispose();
    cts = undefined;
    if (typed?.missing.length && q.query.trim()) {
      seq.invalidate();
      const names = typed.missing.map((m) => `in:${m}`).join(', ');
      qp.items = [messageItem('$(warning) No such folder or file', `${names} names nothing in the workspace folders; give a path from a workspace folder, e.g. in:src`)];
      qp.busy = false;
      searching = false;
      return;
    }
    if (!args) {
      seq.invalidate();
      qp.items = [];
      qp.busy = false;
      searching = false;
      return;
    }
    const id = seq.next();
    const source = new vscode.CancellationTokenSource();
    cts = source;
    qp.busy = true;
    searching = true;
    try {
      const results = parseResults(await service.execute(COMMANDS.search, args, source.token));
      if (!seq.isLatest(id)) {
        return;
      }
      // The status the server returns decides "still indexing", fresh when the answer is empty or weak.
      const weak = results.length > 0 && results.every((r) => r.weak);
      const status = !results.length || weak ? ((await service.refreshStatus()) ?? service.status) : service.status;
      if (!seq.isLatest(id)) {
        return;
      }
      const note = indexingNote(status);
      qp.title = note ? `${baseTitle} (still indexing: results may be incomplete)` : baseTitle;
      const head: ResultItem[] = [];
      if (!results.length) {
        head.push(
          note
            ? messageItem('$(sync~spin) Still indexing', note)
            : messageItem('$(info) No matching code', `Nothing in the index matches "${q.query}".`),
        );
      } else if (weak) {
        head.push(messageItem('$(info) No good match', `Nothing scores high for "${q.query}"; these are the nearest.${note ? ` ${note}` : ''}`));
      }
      qp.items = [...head, ...toItems(results)];
      if (head.length && results.length) {
        qp.activeItems = [qp.items[1]]; // keep Enter on the first result, not on the note
      }
      shown.query = args[0].query;
      shown.results = results;
      shownFor = text;
    } catch (err) {
      if (!seq.isLatest(id) || isCancellation(err)) {
        return;
      }
      qp.items = [messageItem(`$(error) Search failed`, errorText(err))];
    } finally {
      if (seq.isLatest(id)) {
        qp.busy = false;
        searching = false;
      }
    }
  };
  const debounced = debounce((text: string) => void run(text), debounceMs);
  // The index finished, a folder was rebuilt, the server came back after a crash: what is shown (the title's
  // "still indexing", an error row, stale results) may be out of date, so the query runs again.
  const rerun = debounce(() => {
    if (!debounced.pending && qp.value.trim()) {
      void run(qp.value);
    }
  }, 300);
  const stateSub = service.onDidChangeState(() => rerun.call());

  qp.onDidChangeValue((value) => {
    if (value === lastText && !debounced.pending) {
      return; // the initial query set below, echoed back: it is already being searched
    }
    qp.busy = value.trim() !== '';
    debounced.call(value);
  });
  // Enter while the typed text's search is running: the list shows an older query's results; wait for its own.
  wireResultPick(qp, () => {
    const action = acceptAction(debounced.pending, searching, qp.value, shownFor);
    if (action === 'search') {
      debounced.flush();
    }
    return action !== 'open';
  }, (r) => reportOpened(service, shown.query, shown.results, r));
  qp.onDidHide(() => {
    debounced.cancel();
    rerun.cancel();
    stateSub.dispose();
    seq.invalidate();
    cts?.cancel();
    cts?.dispose();
    qp.dispose();
  });

  const editor = vscode.window.activeTextEditor;
  const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
  const start = initial ?? (selected && !selected.includes('\n') && selected.length < 200 ? selected : '');
  qp.show();
  if (start) {
    qp.value = start;
    void run(start);
  }
}

/** A fixed list of results in a QuickPick (filtering allowed); a failed load is tried again when the server's state changes. */
async function showResultList(
  service: NeedleService,
  title: string,
  load: (token: vscode.CancellationToken) => Promise<SearchResult[]>,
): Promise<void> {
  const qp = vscode.window.createQuickPick<ResultItem>();
  qp.title = title;
  qp.placeholder = 'Filter results';
  qp.matchOnDescription = true;
  const cts = new vscode.CancellationTokenSource();
  let failed = false;
  let loading = false;
  const fill = async () => {
    loading = true;
    qp.busy = true;
    try {
      const results = await load(cts.token);
      failed = false;
      qp.items = results.length ? toItems(results) : [messageItem('$(info) No similar code found')];
    } catch (err) {
      if (!isCancellation(err)) {
        failed = true;
        qp.items = [messageItem('$(error) Request failed', errorText(err))];
      }
    } finally {
      loading = false;
      qp.busy = false;
    }
  };
  const retry = debounce(() => {
    if (failed && !loading) {
      void fill();
    }
  }, 300);
  const stateSub = service.onDidChangeState(() => retry.call());
  wireResultPick(qp);
  qp.onDidHide(() => {
    retry.cancel();
    stateSub.dispose();
    cts.cancel();
    cts.dispose();
    qp.dispose();
  });
  qp.show();
  await fill();
}

/** The notebook holding a cell's document, and the cell's index in it. */
function notebookCell(document: vscode.TextDocument): { notebook: vscode.NotebookDocument; index: number } | undefined {
  const notebooks = vscode.workspace.notebookDocuments;
  const found = cellOf(
    document.uri.toString(),
    notebooks.map((nb) => ({ uri: nb.uri.toString(), cells: nb.getCells().map((c) => c.document.uri.toString()) })),
  );
  const notebook = found && notebooks.find((nb) => nb.uri.toString() === found.notebook);
  return notebook && found ? { notebook, index: found.index } : undefined;
}

/** "Needle: Find Similar Code": code most like the function under the cursor (in a file or a notebook's cell). */
export async function findSimilar(service: NeedleService): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage('Needle: open a file and put the cursor in a function first.');
    return;
  }
  const doc = editor.document;
  // A notebook cell's editor holds the cell alone: the server is asked about its notebook, that cell, its line.
  const inCell = doc.uri.scheme === CELL_SCHEME ? notebookCell(doc) : undefined;
  if (doc.uri.scheme === CELL_SCHEME && !inCell) {
    void vscode.window.showInformationMessage('Needle: cannot tell which notebook this cell belongs to.');
    return;
  }
  const uri = inCell ? inCell.notebook.uri : doc.uri;
  // The menus offer it for `file` documents and their notebooks' cells (package.json); run from elsewhere (an
  // untitled notebook) it says why instead of failing.
  const unavailable = similarUnavailable(uri.toString(), inCell ? 'notebook' : 'document');
  if (unavailable) {
    void vscode.window.showInformationMessage(`Needle: ${unavailable}`);
    return;
  }
  const pos = similarPosition(editor.selection, (line) => doc.lineAt(line).text);
  // The saved file's lines would point at another function: with unsaved edits the server reads the editor's
  // text (in a notebook, the cell's: its saved cells may have moved).
  const dirty = inCell ? inCell.notebook.isDirty : doc.isDirty;
  const text = dirty ? doc.getText() : undefined;
  const path = displayPath(uri.toString(), workspaceFolders());
  const where = inCell ? `${path} · ${cellLabel({ index: inCell.index, range: { start: pos, end: pos } })}` : `${path}:${pos.line + 1}`;
  const { k } = settings();
  await showResultList(service, `Needle: Code Similar to ${where}`, async (token) => {
    const args = similarArguments(uri.toString(), { line: pos.line, character: pos.character }, k, text, inCell?.index);
    return parseResults(await service.execute(COMMANDS.similar, args, token));
  });
}

/** "Needle: Reindex": all folders, or the one picked in a multi-root workspace. */
export async function reindex(service: NeedleService): Promise<void> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  let uri: string | undefined;
  if (folders.length > 1) {
    const picked = await vscode.window.showQuickPick(
      [{ label: '$(root-folder) All folders', uri: undefined as string | undefined }].concat(
        folders.map((f) => ({ label: `$(folder) ${f.name}`, uri: f.uri.toString() })),
      ),
      { title: 'Needle: Reindex', placeHolder: 'Which folder to reindex' },
    );
    if (!picked) {
      return;
    }
    uri = picked.uri;
  }
  try {
    await service.execute(COMMANDS.reindex, reindexArguments(uri));
    vscode.window.setStatusBarMessage('$(sync~spin) Needle: reindexing…', 3000);
    void service.refreshStatus();
  } catch (err) {
    void vscode.window.showErrorMessage(`Needle: reindex failed: ${errorText(err)}`);
  }
}

/** "Needle: Cancel Indexing": stop the indexing in progress (a big folder opened by mistake). */
export function cancelIndexing(service: NeedleService): void {
  if (service.cancelIndexing()) {
    vscode.window.setStatusBarMessage('$(debug-stop) Needle: indexing cancelled; what was indexed is searchable', 5000);
  } else {
    void vscode.window.showInformationMessage('Needle: nothing is being indexed.');
  }
}

interface ActionItem extends vscode.QuickPickItem {
  command?: string;
}

/** "Needle: Show Status": the index of each folder, plus the usual actions. */
export async function showStatus(service: NeedleService): Promise<void> {
  const status = service.isRunning ? await service.refreshStatus() : undefined;
  service.output.appendLine(service.report());
  const items: ActionItem[] = [];
  if (service.failure !== undefined) {
    items.push({ label: '$(error) The language server is not running', detail: service.failure });
  } else if (!vscode.workspace.workspaceFolders?.length) {
    items.push({ label: '$(info) No folder is open', detail: 'Open or add a folder: the language server starts then.' });
  } else if (status) {
    for (const f of status.folders) {
      const s = folderSummary(f);
      const icon = f.state === 'indexing' ? '$(sync~spin)' : '$(database)';
      items.push({ label: `${icon} ${s.title}`, description: s.state, detail: s.detail });
    }
    if (!status.folders.length) {
      items.push({ label: '$(info) No workspace folder is indexed', description: status.state });
    }
  } else {
    items.push({ label: '$(loading~spin) The language server is starting' });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  if (service.cancellable) {
    items.push({ label: '$(debug-stop) Cancel Indexing', detail: 'What was indexed so far stays searchable; Reindex goes on.', command: 'needle.cancelIndexing' });
  }
  items.push(
    { label: '$(search) Search Code', command: 'needle.searchCode' },
    { label: '$(sync) Reindex', command: 'needle.reindexWorkspace' },
    { label: '$(output) Show Log', command: 'needle.showLog' },
    { label: '$(debug-restart) Restart Server', command: 'needle.restartServer' },
  );
  if (service.failure !== undefined) {
    items.push({ label: '$(gear) Open Settings', command: 'needle.openSettings' });
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: status ? `Needle: index ${status.state}` : 'Needle',
    placeHolder: 'Index status — pick an action',
  });
  if (picked?.command === 'needle.openSettings') {
    await service.openServerSettings();
  } else if (picked?.command) {
    await vscode.commands.executeCommand(picked.command);
  }
}
