// Commands with a user interface: Search Code, Find Similar Code, Reindex, Show Status.
import * as vscode from 'vscode';
import { COMMANDS, parseQuery, reindexArguments, searchArguments, similarArguments } from './lib/args';
import { debounce, Sequencer } from './lib/debounce';
import { parseResults, resultItem } from './lib/format';
import { folderSummary } from './lib/status';
import type { LspRange, SearchResult } from './lib/types';
import { displayPath, lineSpan } from './lib/uri';
import { e2eLog } from './e2eLog';
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

/** Opens a result's file and selects its range, with the cursor at the start. */
export async function openResult(r: SearchResult, beside = false): Promise<void> {
  const uri = vscode.Uri.parse(r.uri);
  const range = toRange(r.range);
  const editor = await vscode.window.showTextDocument(uri, {
    viewColumn: beside ? vscode.ViewColumn.Beside : undefined,
    preview: false,
  });
  const clipped = editor.document.validateRange(range);
  editor.selection = new vscode.Selection(clipped.end, clipped.start);
  editor.revealRange(new vscode.Range(clipped.start, clipped.start), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  const { first, last } = lineSpan(r.range);
  e2eLog('open', {
    uri: r.uri,
    path: displayPath(r.uri, workspaceFolders()),
    name: r.name,
    line: first,
    lastLine: last,
    activeUri: vscode.window.activeTextEditor?.document.uri.toString(),
    cursorLine: (vscode.window.activeTextEditor?.selection.active.line ?? -1) + 1,
  });
}

function wireResultPick(qp: vscode.QuickPick<ResultItem>, onAccepted?: () => boolean): void {
  qp.onDidAccept(() => {
    if (onAccepted && onAccepted()) {
      return;
    }
    const item = qp.selectedItems[0] ?? qp.activeItems[0];
    if (item?.result) {
      const r = item.result;
      qp.hide();
      openResult(r).catch((err) => void vscode.window.showErrorMessage(`Needle: cannot open ${r.uri}: ${errorText(err)}`));
    }
  });
  qp.onDidTriggerItemButton((e) => {
    if (e.item.result) {
      const r = e.item.result;
      openResult(r, true).catch((err) => void vscode.window.showErrorMessage(`Needle: cannot open ${r.uri}: ${errorText(err)}`));
    }
  });
}

/** "Needle: Search Code": a QuickPick that searches as you type. */
export async function searchCode(service: NeedleService, initial?: string): Promise<void> {
  const { k, debounceMs } = settings();
  const qp = vscode.window.createQuickPick<ResultItem>();
  qp.title = 'Needle: Search Code';
  qp.placeholder = 'Describe the code you are looking for (filters: lang:python glob:src/**)';
  qp.matchOnDescription = false;
  qp.matchOnDetail = false;
  qp.ignoreFocusOut = false;

  const seq = new Sequencer();
  let cts: vscode.CancellationTokenSource | undefined;

  const run = async (text: string) => {
    const q = parseQuery(text);
    const args = searchArguments(q, k);
    cts?.cancel();
    cts?.dispose();
    cts = undefined;
    if (!args) {
      seq.invalidate();
      qp.items = [];
      qp.busy = false;
      return;
    }
    const id = seq.next();
    const source = new vscode.CancellationTokenSource();
    cts = source;
    qp.busy = true;
    try {
      const results = parseResults(await service.execute(COMMANDS.search, args, source.token));
      if (!seq.isLatest(id)) {
        return;
      }
      const indexing = service.status?.state === 'indexing';
      qp.title = indexing ? 'Needle: Search Code (still indexing: results may be incomplete)' : 'Needle: Search Code';
      qp.items = results.length ? toItems(results) : [messageItem('$(info) No matching code', `Nothing in the index matches "${q.query}".`)];
      e2eLog('search', { query: args[0].query, count: results.length, names: results.map((r) => r.name) });
    } catch (err) {
      if (!seq.isLatest(id) || isCancellation(err)) {
        return;
      }
      qp.items = [messageItem(`$(error) Search failed`, errorText(err))];
      e2eLog('search-error', { query: args[0].query, error: errorText(err) });
    } finally {
      if (seq.isLatest(id)) {
        qp.busy = false;
      }
    }
  };
  const debounced = debounce((text: string) => void run(text), debounceMs);

  qp.onDidChangeValue((value) => {
    qp.busy = value.trim() !== '';
    debounced.call(value);
  });
  // Enter before the debounce fired: search now instead of opening a stale result.
  wireResultPick(qp, () => {
    if (debounced.pending) {
      debounced.flush();
      return true;
    }
    return false;
  });
  qp.onDidHide(() => {
    debounced.cancel();
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

/** A fixed list of results in a QuickPick (filtering allowed). */
async function showResultList(title: string, load: (token: vscode.CancellationToken) => Promise<SearchResult[]>): Promise<void> {
  const qp = vscode.window.createQuickPick<ResultItem>();
  qp.title = title;
  qp.placeholder = 'Filter results';
  qp.matchOnDescription = true;
  qp.busy = true;
  const cts = new vscode.CancellationTokenSource();
  wireResultPick(qp);
  qp.onDidHide(() => {
    cts.cancel();
    cts.dispose();
    qp.dispose();
  });
  qp.show();
  try {
    const results = await load(cts.token);
    qp.items = results.length ? toItems(results) : [messageItem('$(info) No similar code found')];
  } catch (err) {
    if (!isCancellation(err)) {
      qp.items = [messageItem('$(error) Request failed', errorText(err))];
    }
  } finally {
    qp.busy = false;
  }
}

/** "Needle: Find Similar Code": code most like the function under the cursor. */
export async function findSimilar(service: NeedleService): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage('Needle: open a file and put the cursor in a function first.');
    return;
  }
  const uri = editor.document.uri;
  const pos = editor.selection.active;
  const where = `${displayPath(uri.toString(), workspaceFolders())}:${pos.line + 1}`;
  await showResultList(`Needle: Code Similar to ${where}`, async (token) => {
    const args = similarArguments(uri.toString(), { line: pos.line, character: pos.character });
    const results = parseResults(await service.execute(COMMANDS.similar, args, token));
    e2eLog('similar', { uri: uri.toString(), line: pos.line + 1, names: results.map((r) => r.name) });
    return results;
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
    await vscode.commands.executeCommand('workbench.action.openSettings', 'needle.server');
  } else if (picked?.command) {
    await vscode.commands.executeCommand(picked.command);
  }
}
