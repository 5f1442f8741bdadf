// Copilot: the `needle_search` language model tool (`vscode.lm.registerTool`, VS Code 1.95+, the engine floor).
import * as vscode from 'vscode';
import { COMMANDS, searchArguments } from './lib/args';
import { parseResults } from './lib/format';
import { parseToolInput, TOOL_NAME, toolResultText } from './lib/tool';
import type { SearchResult } from './lib/types';
import { NeedleService, workspaceFolders } from './service';

/** Current text of the files holding results (open documents first, so unsaved edits count). */
async function readFiles(results: SearchResult[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const uri of new Set(results.map((r) => r.uri))) {
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
    try {
      files.set(uri, open ? open.getText() : new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.parse(uri))));
    } catch {
      // fall back to the server's snippet
    }
  }
  return files;
}

/** The text the tool returns for `input`. */
export async function toolText(service: NeedleService, input: unknown, token?: vscode.CancellationToken): Promise<string> {
  const { query, k } = parseToolInput(input);
  const args = searchArguments({ query }, k);
  const results = parseResults(await service.execute(COMMANDS.search, args ?? [], token));
  return toolResultText(query, results, { folders: workspaceFolders(), files: await readFiles(results) });
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
