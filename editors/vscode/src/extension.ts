// Needle for VS Code: a thin client over the `needle lsp` language server.
import * as vscode from 'vscode';
import { registerLmTool } from './lmTool';
import { NeedleService } from './service';
import { cancelIndexing, findSimilar, reindex, searchCode, searchInFolder, showStatus } from './ui';

let service: NeedleService | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const svc = new NeedleService();
  service = svc;
  context.subscriptions.push(
    svc,
    vscode.commands.registerCommand('needle.searchCode', (query?: unknown) =>
      searchCode(svc, typeof query === 'string' ? query : undefined),
    ),
    // From the Explorer: the clicked resource, then every selected one; from the palette: nothing.
    vscode.commands.registerCommand('needle.searchInFolder', (clicked?: unknown, selected?: unknown) => {
      const uris = (Array.isArray(selected) ? selected : [clicked]).filter((u): u is vscode.Uri => u instanceof vscode.Uri);
      return searchInFolder(svc, uris);
    }),
    vscode.commands.registerCommand('needle.findSimilar', () => findSimilar(svc)),
    vscode.commands.registerCommand('needle.reindexWorkspace', () => reindex(svc)),
    vscode.commands.registerCommand('needle.cancelIndexing', () => cancelIndexing(svc)),
    vscode.commands.registerCommand('needle.showStatus', () => showStatus(svc)),
    vscode.commands.registerCommand('needle.showLog', () => svc.output.show(true)),
    vscode.commands.registerCommand('needle.restartServer', () => svc.restart()),
    // Trusting the workspace makes its own settings count (server command, env, index folder...): restart.
    vscode.workspace.onDidGrantWorkspaceTrust(() => svc.restart()),
  );
  registerLmTool(context, svc);
  svc.output.appendLine('Copilot tool needle_search registered.');
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
