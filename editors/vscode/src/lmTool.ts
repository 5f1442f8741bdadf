// Copilot: the `needle_search` language model tool. `vscode.lm.registerTool` exists from VS Code 1.95;
// on older versions (or editors without `vscode.lm`) registration is skipped.
import * as vscode from 'vscode';
import { COMMANDS, searchArguments } from './lib/args';
import { parseResults } from './lib/format';
import { parseToolInput, TOOL_NAME, toolResultText } from './lib/tool';
import type { SearchResult } from './lib/types';
import { e2eLog } from './e2eLog';
import { NeedleService, workspaceFolders } from './service';

interface ToolInvocation {
  input: unknown;
}
interface LmApi {
  registerTool?: (
    name: string,
    tool: {
      invoke(options: ToolInvocation, token: vscode.CancellationToken): Promise<unknown>;
      prepareInvocation?(options: ToolInvocation, token: vscode.CancellationToken): unknown;
    },
  ) => vscode.Disposable;
  invokeTool?: (name: string, options: { input: unknown; toolInvocationToken: undefined }, token?: vscode.CancellationToken) => Thenable<{ content: unknown[] }>;
  tools?: readonly { name: string }[];
}
interface LmConstructors {
  LanguageModelToolResult?: new (parts: unknown[]) => unknown;
  LanguageModelTextPart?: new (value: string) => unknown;
}

function lmApi(): LmApi | undefined {
  return (vscode as unknown as { lm?: LmApi }).lm;
}

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

/** The text the tool returns for `input` (shared by the tool and the e2e self-check). */
export async function toolText(service: NeedleService, input: unknown, token?: vscode.CancellationToken): Promise<string> {
  const { query, k } = parseToolInput(input);
  const args = searchArguments({ query }, k);
  const results = parseResults(await service.execute(COMMANDS.search, args ?? [], token));
  return toolResultText(query, results, { folders: workspaceFolders(), files: await readFiles(results) });
}

export function registerLmTool(context: vscode.ExtensionContext, service: NeedleService): boolean {
  const lm = lmApi();
  const ctors = vscode as unknown as LmConstructors;
  if (!lm || typeof lm.registerTool !== 'function' || !ctors.LanguageModelToolResult || !ctors.LanguageModelTextPart) {
    return false;
  }
  const Result = ctors.LanguageModelToolResult;
  const Text = ctors.LanguageModelTextPart;
  try {
    context.subscriptions.push(
      lm.registerTool(TOOL_NAME, {
        prepareInvocation(options) {
          const q = (options.input as { query?: unknown } | null)?.query;
          return { invocationMessage: `Searching the code with Needle for "${typeof q === 'string' ? q : ''}"` };
        },
        async invoke(options, token) {
          const text = await toolText(service, options.input, token);
          return new Result([new Text(text)]);
        },
      }),
    );
  } catch (err) {
    service.output.appendLine(`Could not register the ${TOOL_NAME} tool: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
  return true;
}

/** E2E self-check: call the registered tool through `vscode.lm.invokeTool` and log what it returned. */
export async function e2eInvokeTool(query: string): Promise<void> {
  const lm = lmApi();
  const listed = !!lm?.tools?.some((t) => t.name === TOOL_NAME);
  if (!lm?.invokeTool) {
    e2eLog('tool', { listed, error: 'vscode.lm.invokeTool is not available' });
    return;
  }
  try {
    const result = await lm.invokeTool(TOOL_NAME, { input: { query, k: 3 }, toolInvocationToken: undefined });
    const text = result.content.map((p) => (p as { value?: unknown }).value).filter((v) => typeof v === 'string').join('\n');
    e2eLog('tool', { listed, text });
  } catch (err) {
    e2eLog('tool', { listed, error: err instanceof Error ? err.message : String(err) });
  }
}
