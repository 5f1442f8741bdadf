// Copilot: the `needle_search` language model tool (`vscode.lm.registerTool`, VS Code 1.95+, the engine floor).
import * as vscode from 'vscode';
import { COMMANDS, searchArguments } from './lib/args';
import { parseResults } from './lib/format';
import { opensAsCell } from './lib/notebook';
import { parseToolInput, TOOL_NAME, toolResultText } from './lib/tool';
import type { SearchResult } from './lib/types';
import { NeedleService, workspaceFolders } from './service';

/** Current text of the files holding results (open documents first, so unsaved edits count). */
async function readFiles(results: SearchResult[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const uri of new Set(results.filter((r) => !opensAsCell(r)).map((r) => r.uri))) {
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
    try {
      files.set(uri, open ? open.getText() : new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.parse(uri))));
    } catch {
      // fall back to the server's snippet
    }
  }
  return files;
}

/** The cells' text of the notebooks holding results, read as the notebook editor reads them (an open notebook's
 * as it is). A notebook that cannot be read so is left out: its results keep the server's snippet. */
async function readCells(results: SearchResult[]): Promise<Map<string, string[]>> {
  const cells = new Map<string, string[]>();
  for (const uri of new Set(results.filter(opensAsCell).map((r) => r.uri))) {
    try {
      const notebook = await vscode.workspace.openNotebookDocument(vscode.Uri.parse(uri));
      cells.set(uri, notebook.getCells().map((c) => c.document.getText()));
    } catch {
      // the snippet stands in
    }
  }
  return cells;
}

/** The text the tool returns for `input`. */
export async function toolText(service: NeedleService, input: unknown, token?: vscode.CancellationToken): Promise<string> {
  const { query, k } = parseToolInput(input);
  const args = searchArguments({ query }, k);
  const results = parseResults(await service.execute(COMMANDS.search, args ?? [], token));
  return toolResultText(query, results, {
    folders: workspaceFolders(),
    files: await readFiles(results),
    cells: await readCells(results),
  });
}

interface ToolInput {
  query?: unknown;
  k?: unknown;
}

export function registerLmTool(context: vscode.ExtensionContext, service: NeedleService): void {
  const tool: vscode.LanguageModelTool<ToolInput> = {
    prepareInvocation(options) {
      const q = options.input?.query;
      return { invocationMessage: `Searching the code with Needle for "${typeof q === 'string' ? q : ''}"` };
    },
    async invoke(options, token) {
      const text = await toolText(service, options.input, token);
      return new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(text)]);
    },
  };
  context.subscriptions.push(vscode.lm.registerTool(TOOL_NAME, tool));
}
