// The language client's life cycle: start, stop, restart, error reporting, progress and status.
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { COMMANDS, findOnPath, initializationOptions, isBareCommand, serverCommand } from './lib/args';
import { parseStatus, statusBarView, statusReport, type ClientView } from './lib/status';
import { effectiveValue, serverSection } from './lib/trust';
import type { Folder, IndexStatus, ProgressInfo } from './lib/types';

/** A setting's value, honouring Restricted Mode (workspace values of restricted keys ignored when untrusted). */
function setting<T>(cfg: vscode.WorkspaceConfiguration, key: string): T | undefined {
  return effectiveValue<T>(key, cfg.inspect<T>(key), vscode.workspace.isTrusted);
}

/**
 * The `needle` section for `scope` as the server may see it: in Restricted Mode only the harmless keys keep the
 * workspace's values (lib/trust). initializationOptions, workspace/didChangeConfiguration and the answers to
 * workspace/configuration all come from here.
 */
export function trustedSection(scope?: vscode.Uri): Record<string, unknown> {
  const cfg = vscode.workspace.getConfiguration('needle', scope);
  return serverSection(
    {
      section: () => vscode.workspace.getConfiguration(undefined, scope).get('needle'),
      inspect: (key) => cfg.inspect(key),
    },
    vscode.workspace.isTrusted,
  );
}

/** LanguageClient whose start failure is reported by us (with useful buttons), not by a bare notification. */
class NeedleClient extends LanguageClient {
  quietStartErrors = true;
  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    if (this.quietStartErrors && message.includes("couldn't create connection")) {
      showNotification = false;
    }
    super.error(message, data, showNotification);
  }
}

export function workspaceFolders(): Folder[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => ({ name: f.name, uri: f.uri.toString() }));
}

export class NeedleService implements vscode.Disposable {
  readonly output = vscode.window.createOutputChannel('Needle');
  private readonly statusItem = vscode.window.createStatusBarItem('needle.status', vscode.StatusBarAlignment.Right, 100);
  private client: NeedleClient | undefined;
  private view: ClientView = { phase: 'stopped' };
  private readonly progress = new Map<string, ProgressInfo>();
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private crashes: number[] = [];
  private starting: Promise<void> | undefined;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly statusEmitter = new vscode.EventEmitter<IndexStatus>();
  /** Fires whenever a fresh `needle.status` answer arrives. */
  readonly onDidChangeStatus = this.statusEmitter.event;

  constructor() {
    this.statusItem.name = 'Needle';
    this.statusItem.command = 'needle.showStatus';
    this.render();
    this.statusItem.show();
    this.disposables.push(
      this.output,
      this.statusItem,
      this.statusEmitter,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('needle.server')) {
          this.output.appendLine('needle.server settings changed: restarting the server.');
          void this.restart();
        } else if (e.affectsConfiguration('needle')) {
          this.pushSettings();
        }
      }),
    );
  }

  get status(): IndexStatus | undefined {
    return this.view.status;
  }

  get failure(): string | undefined {
    return this.view.phase === 'failed' ? this.view.error : undefined;
  }

  get isRunning(): boolean {
    return this.client !== undefined && this.client.state === State.Running;
  }

  private render(): void {
    const progress = [...this.progress.values()].pop();
    const v = statusBarView({ ...this.view, progress });
    this.statusItem.text = v.text;
    this.statusItem.tooltip = v.tooltip;
    this.statusItem.backgroundColor = v.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  private setView(patch: Partial<ClientView>): void {
    this.view = { ...this.view, ...patch };
    this.render();
  }

  /** The command line from the settings, with `${workspaceFolder}` and `~` expanded. */
  private commandLine(): { command: string; args: string[]; env: Record<string, string> } {
    const cfg = vscode.workspace.getConfiguration('needle');
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const cmd = serverCommand(setting(cfg, 'server.path'), setting(cfg, 'server.args'), { workspaceFolder: folder, home: os.homedir() });
    const envSetting = setting<Record<string, unknown>>(cfg, 'server.env') ?? {};
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(envSetting)) {
      if (typeof v === 'string') {
        env[k] = v;
      }
    }
    return { ...cmd, env };
  }

  /** Why the command cannot be run, or undefined when it looks runnable. */
  private preflight(command: string, env: NodeJS.ProcessEnv): string | undefined {
    if (command.includes('${')) {
      return undefined; // an unknown variable: let the spawn report it
    }
    const isWin = process.platform === 'win32';
    const exists = (file: string) => {
      try {
        fs.accessSync(file, isWin ? fs.constants.F_OK : fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    };
    if (isBareCommand(command)) {
      const exts = isWin ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').toLowerCase().split(';')] : [''];
      const found = findOnPath(command, env.PATH ?? env.Path, exists, isWin ? ';' : ':', exts);
      return found ? undefined : `"${command}" was not found on PATH`;
    }
    return exists(command) ? undefined : `"${command}" does not exist or is not executable`;
  }

  start(): Promise<void> {
    if (!this.starting) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (this.disposed || this.client) {
      return;
    }
    const { command, args, env } = this.commandLine();
    const fullEnv = { ...process.env, ...env };
    const shown = [command, ...args].join(' ');
    this.output.appendLine(`Starting the Needle language server: ${shown}`);
    this.setView({ phase: 'starting', error: undefined, status: undefined });
    this.progress.clear();

    const problem = this.preflight(command, fullEnv);
    if (problem) {
      this.fail(problem, shown);
      return;
    }

    const serverOptions: ServerOptions = {
      command,
      args,
      options: { env: fullEnv, cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      // Trust-filtered (lib/trust), as are the settings pushed on changes and the workspace/configuration answers.
      // No `synchronize.configurationSection`: the client library would push the unfiltered section.
      initializationOptions: initializationOptions(trustedSection(vscode.workspace.workspaceFolders?.[0]?.uri)),
      errorHandler: {
        error: (_error, _message, count) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: () => {
          const now = Date.now();
          this.crashes = this.crashes.filter((t) => now - t < 3 * 60_000);
          this.crashes.push(now);
          if (this.crashes.length <= 4) {
            this.output.appendLine('The Needle server stopped unexpectedly: restarting it.');
            return { action: CloseAction.Restart, handled: true };
          }
          this.fail('it stopped 5 times in 3 minutes', shown);
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      middleware: {
        workspace: {
          // The server pulls per-folder settings: answered from trustedSection, so in Restricted Mode the
          // workspace's values of settings that can run code or write files never reach it.
          configuration: async (params, token, next) => {
            const needle = params.items.map((item) => item.section === 'needle');
            const answer = needle.every(Boolean) ? [] : await next(params, token);
            if (!Array.isArray(answer)) {
              return answer;
            }
            return params.items.map((item, i) =>
              needle[i] ? trustedSection(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined) : answer[i],
            );
          },
        },
        // Not passed on (`next`): the client library would show the same progress a second time, as its
        // own window-progress item. The one status bar item shows it instead (counted in chunks).
        handleWorkDoneProgress: (token, params) => {
          this.onProgress(String(token), params);
        },
      },
    };

    const client = new NeedleClient('needle', 'Needle', serverOptions, clientOptions);
    this.client = client;
    this.disposables.push(
      client.onDidChangeState((e) => {
        if (this.client !== client) {
          return;
        }
        if (e.newState === State.Running) {
          this.setView({ phase: 'running', error: undefined });
          void this.refreshStatus();
        } else if (e.newState === State.Stopped && this.view.phase === 'running') {
          this.setView({ phase: 'starting' });
        }
      }),
    );
    try {
      await client.start();
      this.output.appendLine('The Needle language server is running.');
      this.setView({ phase: 'running', error: undefined });
      await this.refreshStatus();
    } catch (err) {
      if (this.client === client) {
        this.client = undefined;
        try {
          await client.dispose(2000);
        } catch {
          // already down
        }
      }
      this.fail(err instanceof Error ? err.message : String(err), shown);
    }
  }

  private fail(reason: string, commandLine: string): void {
    this.output.appendLine(`Could not run the Needle language server (${commandLine}): ${reason}`);
    this.setView({ phase: 'failed', error: reason, status: undefined });
    this.progress.clear();
    this.render();
    void this.showStartError(reason);
  }

  async showStartError(reason = this.view.error ?? 'unknown error'): Promise<void> {
    const pick = await vscode.window.showErrorMessage(
      `Needle: the language server could not start: ${reason}. ` +
        'Install Needle (from its repository: `make setup`, or `make dist` and `pipx install` the wheel) and ' +
        'point the "needle.server.path" setting at its "needle" command.',
      'Open Settings',
      'Show Log',
      'Retry',
    );
    if (pick === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'needle.server');
    } else if (pick === 'Show Log') {
      this.output.show(true);
    } else if (pick === 'Retry') {
      await this.restart();
    }
  }

  /** workspace/didChangeConfiguration with the trust-filtered section (the server reads `extraRoots` from it). */
  private pushSettings(): void {
    const client = this.client;
    if (!client || client.state !== State.Running) {
      return;
    }
    client
      .sendNotification(DidChangeConfigurationNotification.type, { settings: { needle: trustedSection() } })
      .catch((err) => this.output.appendLine(`Sending the settings failed: ${err instanceof Error ? err.message : String(err)}`));
  }

  private onProgress(token: string, p: { kind: string; title?: string; message?: string; percentage?: number }): void {
    if (p.kind === 'end') {
      this.progress.delete(token);
      this.render();
      void this.refreshStatus();
      return;
    }
    const prev = this.progress.get(token) ?? {};
    this.progress.set(token, {
      title: p.title ?? prev.title,
      message: p.message ?? prev.message,
      percentage: p.percentage ?? prev.percentage,
    });
    if (p.kind === 'begin') {
      void this.refreshStatus(); // counts come from needle.status, polled while indexing
    }
    this.render();
  }

  /** Asks the server for `needle.status`; keeps polling while the index is still being built. */
  async refreshStatus(): Promise<IndexStatus | undefined> {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    if (!this.isRunning) {
      return undefined;
    }
    let status: IndexStatus | undefined;
    try {
      status = parseStatus(await this.execute(COMMANDS.status, [{}]));
    } catch (err) {
      this.output.appendLine(`needle.status failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (status) {
      this.setView({ status });
      this.statusEmitter.fire(status);
    }
    // Polled while it can change by itself; "partial" and "none" wait for a reindex or a folder (progress says so).
    if (!this.disposed && this.isRunning && (!status || status.state === 'indexing' || status.state === 'starting')) {
      this.pollTimer = setTimeout(() => void this.refreshStatus(), status ? 2000 : 5000);
    }
    return status;
  }

  /** `workspace/executeCommand` on the server. */
  async execute(command: string, args: unknown[], token?: vscode.CancellationToken): Promise<unknown> {
    if (this.starting && !this.isRunning) {
      await this.starting; // a command issued while the server starts waits for it
    }
    const client = this.client;
    if (!client || client.state !== State.Running) {
      const why = this.view.phase === 'failed' ? `: ${this.view.error}` : '';
      throw new Error(`the Needle language server is not running${why}`);
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token);
  }

  report(): string {
    if (this.view.phase === 'failed') {
      return `Needle server not running: ${this.view.error}`;
    }
    return this.view.status ? statusReport(this.view.status) : `Needle server: ${this.view.phase}`;
  }

  async stop(): Promise<void> {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    const client = this.client;
    this.client = undefined;
    this.progress.clear();
    if (client) {
      try {
        await client.dispose(3000);
      } catch (err) {
        this.output.appendLine(`Stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.setView({ phase: 'stopped', status: undefined });
  }

  async restart(): Promise<void> {
    if (this.starting) {
      await this.starting;
    }
    await this.stop();
    this.crashes = [];
    await this.start();
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
