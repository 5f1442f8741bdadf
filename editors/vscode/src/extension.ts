// Needle for VS Code: a thin client over the `needle lsp` language server.
import * as vscode from 'vscode';
import { e2eEnabled, e2eLog } from './e2eLog';
import { e2eInvokeTool, registerLmTool } from './lmTool';
import { NeedleService } from './service';
import { findSimilar, reindex, searchCode, showStatus } from './ui';

let service: NeedleService | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const svc = new NeedleService();
  service = svc;
  context.subscriptions.push(
    svc,
    vscode.commands.registerCommand('needle.searchCode', (query?: unknown) =>
      searchCode(svc, typeof query === 'string' ? query : undefined),
    ),
    vscode.commands.registerCommand('needle.findSimilar', () => findSimilar(svc)),
    vscode.commands.registerCommand('needle.reindexWorkspace', () => reindex(svc)),
    vscode.commands.registerCommand('needle.showStatus', () => showStatus(svc)),
    vscode.commands.registerCommand('needle.showLog', () => svc.output.show(true)),
    vscode.commands.registerCommand('needle.restartServer', () => svc.restart()),
  );
  const tool = registerLmTool(context, svc);
  svc.output.appendLine(tool ? 'Copilot tool needle_search registered.' : 'vscode.lm.registerTool is not available: no Copilot tool.');
  e2eLog('activated', { vscode: vscode.version, tool });

  const toolQuery = process.env.NEEDLE_E2E_TOOL_QUERY;
  if (e2eEnabled() && toolQuery) {
    let done = false;
    const sub = svc.onDidChangeStatus((s) => {
      if (s.state === 'ready' && !done) {
        done = true;
        sub.dispose();
        void e2eInvokeTool(toolQuery);
      }
    });
    context.subscriptions.push(sub);
  }
  // Do not block activation on the server: start it in the background.
  void svc.start();
}

export async function deactivate(): Promise<void> {
  const svc = service;
  service = undefined;
  if (svc) {
    await svc.stop();
  }
}
