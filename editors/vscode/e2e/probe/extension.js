// Test-only companion of the Needle extension, installed by e2e/run.mjs beside needle.vsix: it watches what
// the user sees (active editor, cursor, selection, the notebook editor and its selected cells) and the server's
// status through public VS Code APIs, calls
// the needle_search tool like Copilot would, and appends one JSON line per event to $NEEDLE_E2E_LOG.
// Keeping this here keeps test scaffolding out of the shipped extension.
const fs = require('fs');
const vscode = require('vscode');

const target = process.env.NEEDLE_E2E_LOG;

function log(event, data = {}) {
  if (!target) return;
  try {
    fs.appendFileSync(target, `${JSON.stringify({ t: Date.now(), event, ...data })}\n`);
  } catch {
    // never break the window under test
  }
}

/** For a notebook cell's document: its notebook's URI and the cell's index there. */
function cellOf(document) {
  for (const nb of vscode.workspace.notebookDocuments) {
    const index = nb.getCells().findIndex((c) => c.document === document);
    if (index >= 0) return { notebook: nb.uri.toString(), cell: index };
  }
  return {};
}

function editorState(editor) {
  if (!editor) return { uri: null };
  const sel = editor.selection;
  return {
    uri: editor.document.uri.toString(),
    line: sel.active.line + 1,
    character: sel.active.character,
    empty: sel.isEmpty,
    visible: editor.visibleRanges.map((r) => [r.start.line + 1, r.end.line + 1]),
    ...(editor.document.uri.scheme === 'vscode-notebook-cell' ? cellOf(editor.document) : {}),
  };
}

function notebookState(editor) {
  if (!editor) return { notebook: null };
  return { notebook: editor.notebook.uri.toString(), selections: editor.selections.map((r) => [r.start, r.end]) };
}

async function invokeTool(query) {
  const listed = vscode.lm.tools.some((t) => t.name === 'needle_search');
  try {
    const result = await vscode.lm.invokeTool('needle_search', { input: { query, k: 3 }, toolInvocationToken: undefined });
    const text = result.content.map((p) => p.value).filter((v) => typeof v === 'string').join('\n');
    log('tool', { listed, text });
  } catch (err) {
    log('tool', { listed, error: err instanceof Error ? err.message : String(err) });
  }
}

exports.activate = (context) => {
  log('activated', {
    vscode: vscode.version,
    trusted: vscode.workspace.isTrusted,
    remoteName: vscode.env.remoteName ?? null,
    folders: (vscode.workspace.workspaceFolders ?? []).length,
  });
  context.subscriptions.push(
    vscode.window.onDidChangeActiveTextEditor((e) => log('editor', editorState(e))),
    vscode.window.onDidChangeTextEditorSelection((e) => {
      if (e.textEditor === vscode.window.activeTextEditor) log('selection', editorState(e.textEditor));
    }),
    vscode.window.onDidChangeActiveNotebookEditor((e) => log('notebook', notebookState(e))),
    vscode.window.onDidChangeNotebookEditorSelection((e) => {
      if (e.notebookEditor === vscode.window.activeNotebookEditor) log('notebook', notebookState(e.notebookEditor));
    }),
  );
  // The language client registers the server's commands as VS Code commands: poll needle.status.
  let last = '';
  const poll = async () => {
    let status;
    try {
      status = await vscode.commands.executeCommand('needle.status', {});
    } catch (err) {
      status = undefined;
    }
    const state = status ? status.state : 'unavailable';
    if (state !== last) {
      last = state;
      log('status', { state, roots: status ? (status.folders || []).map((f) => f.root) : [] });
    }
    if (state === 'ready') {
      if (process.env.NEEDLE_E2E_TOOL_QUERY) await invokeTool(process.env.NEEDLE_E2E_TOOL_QUERY);
      return;
    }
    setTimeout(poll, 300);
  };
  setTimeout(poll, 300);
};

exports.deactivate = () => {};
