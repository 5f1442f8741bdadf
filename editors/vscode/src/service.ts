// The language client's life cycle: start, stop, restart, error reporting, progress and status.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
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
  WorkDoneProgressCancelNotification,
  type ProgressToken,
} from 'vscode-languageclient/node';
import { COMMANDS, findOnPath, initializationOptions, isBareCommand, relativeCommandProblem, serverCommand } from './lib/args';
import {
  CrashCounter,
  OutputTail,
  TimeoutError,
  crashLoopMessage,
  describeExit,
  startFailureMessage,
  startTimeoutMs,
  startTimeoutReason,
  withTimeout,
  type ExitInfo,
} from './lib/lifecycle';
import { settingsTarget } from './lib/settingsTarget';
import { parseStatus, stateKey, statusBarView, statusReport, type ClientView } from './lib/status';
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

const RESTART_WAIT_MS = 20_000; // how long a request waits for the client's own restart after a crash

/** A request that failed because the connection to the server went away (not an answer of the server). */
function connectionLost(err: unknown): boolean {
  const e = err as { code?: number; message?: string } | null;
  return (
    !!e &&
    ((typeof e.code === 'number' && e.code <= -32096 && e.code >= -32099) ||
      /connection got disposed|connection is disposed|client is not running|connection (?:was )?closed/i.test(e.message ?? ''))
  );
}

/** One started server: its client, its process (replaced when the client restarts it after a crash), its stderr. */
interface Session {
  client: NeedleClient;
  proc?: ChildProcess;
  exited?: Promise<void>;
  exit?: ExitInfo;
  stderr: OutputTail;
  /** Reached Running once: a close is then a crash (restart it), before that a failed start (report it). */
  everRunning: boolean;
  /** Stopped, replaced by a restart or failed: its closes never restart it and its events are ignored. */
  ended: boolean;
  disposables: vscode.Disposable[];
}

/**
 * LanguageClient whose start failures and crashes are reported by us (exit code, stderr, useful buttons), not by
 * the library's bare notifications ("couldn't create connection", "Restarting server failed": logged only).
 */
class NeedleClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    if (/couldn't create connection|Restarting server failed/.test(message)) {
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
  private session: Session | undefined;
  private view: ClientView = { phase: 'stopped' };
  private readonly progress = new Map<string, ProgressInfo>();
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly crashes = new CrashCounter(5, 3 * 60_000);
  private starting: Promise<void> | undefined;
  /** The command line (command, args, env) the current server was started with: a same-value change keeps it. */
  private startedWith: string | undefined;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly statusEmitter = new vscode.EventEmitter<IndexStatus>();
  /** Fires whenever a fresh `needle.status` answer arrives. */
  readonly onDidChangeStatus = this.statusEmitter.event;
  private readonly stateEmitter = new vscode.EventEmitter<void>();
  private lastStateKey = '';
  /** Fires when the server's phase or the index state changes (not on every poll): open pickers re-run. */
  readonly onDidChangeState = this.stateEmitter.event;

  constructor() {
    this.statusItem.name = 'Needle';
    this.statusItem.command = 'needle.showStatus';
    this.render();
    this.statusItem.show();
    this.disposables.push(
      this.output,
      this.statusItem,
      this.statusEmitter,
      this.stateEmitter,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('needle.server')) {
          if (this.session && this.commandKey() === this.startedWith) {
            this.output.appendLine('needle.server settings changed, but not the command line: the server keeps running.');
          } else if (this.session || this.view.phase === 'failed') {
            this.output.appendLine('needle.server settings changed: restarting the server.');
            void this.restart();
            return;
          }
        }
        if (e.affectsConfiguration('needle')) {
          this.pushSettings();
        }
      }),
      // A window without a folder does not start the server; the first folder added starts it.
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        if (vscode.workspace.workspaceFolders?.length && !this.session && this.view.phase === 'no-folder') {
          void this.start();
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
    return this.session !== undefined && this.session.client.state === State.Running;
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
    const key = stateKey(this.view.phase, this.view.status);
    if (key !== this.lastStateKey) {
      this.lastStateKey = key;
      this.stateEmitter.fire();
    }
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

  private commandKey(): string {
    const { command, args, env } = this.commandLine();
    return JSON.stringify([command, args, Object.entries(env).sort()]);
  }

  /** Why the command cannot be run, or undefined when it looks runnable. */
  private preflight(command: string, env: NodeJS.ProcessEnv): string | undefined {
    if (command.includes('${')) {
      return undefined; // an unknown variable: let the spawn report it
    }
    const relative = relativeCommandProblem(command, path.isAbsolute);
    if (relative) {
      return relative;
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

  /** Starts the server unless it runs or is starting; in a window without a folder, waits for one instead. */
  start(): Promise<void> {
    if (this.disposed) {
      return Promise.resolve();
    }
    if (!vscode.workspace.workspaceFolders?.length) {
      // Nothing to index: no process, no "no workspace folder" warning; a folder added later starts it.
      this.setView({ phase: 'no-folder', error: undefined, status: undefined });
      return Promise.resolve();
    }
    if (this.session) {
      return this.starting ?? Promise.resolve();
    }
    const p = this.doStart()
      .catch((err) => {
        // A bug of ours must not leave the status bar "starting" forever.
        this.session = undefined;
        this.fail(`unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`, 'needle');
      })
      .finally(() => {
      if (this.starting === p) {
        this.starting = undefined;
      }
    });
    this.starting = p;
    return p;
  }

  /** Spawns the server process for `s` (also when the client restarts it after a crash), keeping its stderr. */
  private spawnServer(s: Session, command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string | undefined): Promise<ChildProcess> {
    return new Promise<ChildProcess>((resolve, reject) => {
      if (s.ended || this.disposed) {
        reject(new Error('the server was stopped'));
        return;
      }
      const proc = spawn(command, args, { env, cwd, stdio: 'pipe', windowsHide: true });
      s.proc = proc;
      s.exit = undefined;
      s.stderr.clear();
      s.exited = new Promise<void>((done) =>
        proc.once('exit', (code, signal) => {
          s.exit = { code, signal };
          done();
        }),
      );
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string | Buffer) => s.stderr.push(String(d)));
      proc.on('error', (err) => this.output.appendLine(`Needle server process: ${err.message}`));
      proc.once('spawn', () => resolve(proc));
      proc.once('error', reject); // ENOENT, EACCES...: before 'spawn'
    });
  }

  /** Waits (at most `ms`) for the session's current process to exit, so its exit code is known. */
  private async waitExit(s: Session, ms: number): Promise<void> {
    if (!s.exited || s.exit) {
      return;
    }
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, ms))]);
  }

  private async doStart(): Promise<void> {
    const { command, args, env } = this.commandLine();
    const fullEnv = { ...process.env, ...env };
    const shown = [command, ...args].join(' ');
    this.startedWith = this.commandKey();
    this.output.appendLine(`Starting the Needle language server: ${shown}`);
    this.progress.clear();
    this.setView({ phase: 'starting', error: undefined, status: undefined });

    const problem = this.preflight(command, fullEnv);
    if (problem) {
      this.fail(problem, shown);
      return;
    }

    const folderUri = vscode.workspace.workspaceFolders?.[0]?.uri;
    const cwd = folderUri?.scheme === 'file' ? folderUri.fsPath : undefined;
    const timeoutMs = startTimeoutMs(setting(vscode.workspace.getConfiguration('needle'), 'server.startTimeout'));
    const s: Session = { client: undefined as unknown as NeedleClient, stderr: new OutputTail(), everRunning: false, ended: false, disposables: [] };
    const serverOptions: ServerOptions = () => this.spawnServer(s, command, args, fullEnv, cwd);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      // Trust-filtered (lib/trust), as are the settings pushed on changes and the workspace/configuration answers.
      // No `synchronize.configurationSection`: the client library would push the unfiltered section.
      initializationOptions: initializationOptions(trustedSection(folderUri)),
      // A server that dies during `initialize`: no library notification with the bare "Pending response
      // rejected since connection got disposed"; doStart (or onClosed, after a crash) says what happened.
      initializationFailedHandler: () => false,
      errorHandler: {
        error: (_error, _message, count) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: () => this.onClosed(s),
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
          this.onProgress(token, params);
        },
      },
    };

    const client = new NeedleClient('needle', 'Needle', serverOptions, clientOptions);
    s.client = client;
    this.session = s;
    s.disposables.push(
      client.onDidChangeState((e) => {
        if (this.session !== s || s.ended) {
          return;
        }
        if (e.newState === State.Running) {
          s.everRunning = true;
          this.setView({ phase: 'running', error: undefined });
          void this.refreshStatus();
        } else if (this.view.phase === 'running') {
          this.setView({ phase: 'starting' }); // restarting after a crash
        }
      }),
    );
    try {
      await withTimeout(client.start(), timeoutMs);
      if (this.session !== s) {
        return; // replaced while starting (settings change, Restart): that restart stopped it
      }
      if (client.state !== State.Running) {
        // vscode-languageclient 9 resolves start() when the connection closes during `initialize`.
        throw new Error('the connection to the server closed while it was starting');
      }
      s.everRunning = true;
      this.output.appendLine('The Needle language server is running.');
      this.setView({ phase: 'running', error: undefined });
      void this.refreshStatus();
    } catch (err) {
      if (this.session !== s) {
        return;
      }
      this.session = undefined;
      let reason: string;
      if (err instanceof TimeoutError) {
        reason = startTimeoutReason(timeoutMs / 1000);
      } else {
        // "Pending response rejected since connection got disposed" says nothing: the exit code and the last
        // lines the server wrote to stderr ("No module named codeneedle") say what went wrong.
        await this.waitExit(s, 1500);
        reason = s.exit ? describeExit(s.exit, s.stderr.lines(3)) : err instanceof Error ? err.message : String(err);
      }
      await this.endSession(s);
      this.fail(reason, shown);
    }
  }

  /** The client lost its connection: a failed start is reported by doStart, a crash restarts (5 in 3 min: not). */
  private async onClosed(s: Session): Promise<{ action: CloseAction; handled: boolean }> {
    if (s.ended || this.disposed || this.session !== s || !s.everRunning) {
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    await this.waitExit(s, 1000);
    const last = describeExit(s.exit, s.stderr.lines(2));
    if (this.crashes.record(Date.now())) {
      this.output.appendLine(`The Needle server stopped unexpectedly (${last}): restarting it.`);
      this.setView({ phase: 'starting' });
      return { action: CloseAction.Restart, handled: true };
    }
    this.session = undefined;
    s.ended = true;
    setTimeout(() => void this.endSession(s), 0); // once the client has settled in Stopped
    this.failCrashLoop(last);
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  /** Stops a session's client and makes sure its process is gone (a wedged start cannot be stopped by the client). */
  private async endSession(s: Session): Promise<void> {
    s.ended = true;
    for (const d of s.disposables.splice(0)) {
      d.dispose();
    }
    const client = s.client;
    if (client.state === State.Running) {
      try {
        await client.dispose(3000);
      } catch (err) {
        this.output.appendLine(`Stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
    } else {
      client.dispose(0).catch(() => undefined); // starting or failed: nothing to shut down politely
    }
    const proc = s.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await this.waitExit(s, 2000);
      if (proc.exitCode === null && proc.signalCode === null) {
        this.output.appendLine(`The server process ${proc.pid} did not stop: killing it.`);
        proc.kill('SIGKILL');
        await this.waitExit(s, 1000);
      }
    }
  }

  private fail(reason: string, commandLine: string): void {
    this.output.appendLine(`Could not run the Needle language server (${commandLine}): ${reason}`);
    this.progress.clear();
    this.setView({ phase: 'failed', error: reason, status: undefined });
    void this.showStartError(reason);
  }

  private failCrashLoop(last: string): void {
    const minutes = Math.round(this.crashes.windowMs / 60_000);
    const reason = `it keeps crashing (${this.crashes.count} times in ${minutes} minutes; ${last})`;
    this.output.appendLine(`The Needle language server ${reason.replace(/^it /, '')}: not restarting it again.`);
    this.progress.clear();
    this.setView({ phase: 'failed', error: reason, status: undefined });
    void (async () => {
      const pick = await vscode.window.showErrorMessage(crashLoopMessage(this.crashes.count, minutes, last), 'Show Log', 'Restart Server');
      if (pick === 'Show Log') {
        this.output.show(true);
      } else if (pick === 'Restart Server') {
        await this.restart();
      }
    })();
  }

  async showStartError(reason = this.view.error ?? 'unknown error'): Promise<void> {
    const pick = await vscode.window.showErrorMessage(startFailureMessage(reason), 'Open Settings', 'Show Log', 'Retry');
    if (pick === 'Open Settings') {
      await this.openServerSettings();
    } else if (pick === 'Show Log') {
      this.output.show(true);
    } else if (pick === 'Retry') {
      await this.restart();
    }
  }

  /** The settings of the server command, in the tab that applies (Remote in a remote window: lib/settingsTarget). */
  async openServerSettings(): Promise<void> {
    const cfg = vscode.workspace.getConfiguration('needle');
    const keys = ['server.path', 'server.args', 'server.env'];
    const workspaceSetsServer = keys.some((k) => {
      const i = cfg.inspect(k);
      return i?.workspaceValue !== undefined || i?.workspaceFolderValue !== undefined;
    });
    const target = settingsTarget({ remoteName: vscode.env.remoteName, workspaceSetsServer, trusted: vscode.workspace.isTrusted });
    try {
      await vscode.commands.executeCommand(target.command, target.args);
    } catch {
      await vscode.commands.executeCommand('workbench.action.openSettings', target.args.query);
    }
  }

  /** workspace/didChangeConfiguration with the trust-filtered section (the server reads `extraRoots` from it). */
  private pushSettings(): void {
    const client = this.session?.client;
    if (!client || client.state !== State.Running) {
      return;
    }
    client
      .sendNotification(DidChangeConfigurationNotification.type, { settings: { needle: trustedSection() } })
      .catch((err) => this.output.appendLine(`Sending the settings failed: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Whether an indexing in progress can be cancelled (Needle: Cancel Indexing). */
  get cancellable(): boolean {
    return [...this.progress.values()].some((p) => p.cancellable);
  }

  /**
   * "Needle: Cancel Indexing": `window/workDoneProgress/cancel` for every cancellable indexing in progress; what
   * was indexed so far stays searchable (the folder is partial) and Reindex goes on. False when there was none.
   */
  cancelIndexing(): boolean {
    const client = this.session?.client;
    const active = [...this.progress.values()].filter((p) => p.cancellable && p.token !== undefined);
    if (!client || !this.isRunning || !active.length) {
      return false;
    }
    for (const p of active) {
      client
        .sendNotification(WorkDoneProgressCancelNotification.type, { token: p.token as ProgressToken })
        .catch((err) => this.output.appendLine(`Cancelling failed: ${err instanceof Error ? err.message : String(err)}`));
    }
    return true;
  }

  private onProgress(raw: ProgressToken, p: { kind: string; title?: string; message?: string; percentage?: number; cancellable?: boolean }): void {
    const token = String(raw);
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
      cancellable: p.kind === 'begin' ? p.cancellable === true : prev.cancellable,
      token: raw,
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

  /** Waits (at most `ms`) until the session's client runs again after a crash; false if it does not. */
  private async waitForRunning(s: Session, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.session !== s || s.ended || this.disposed) {
        return false;
      }
      if (s.client.state === State.Running) {
        return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** `workspace/executeCommand` on the server; waits for a start in progress and for a restart after a crash. */
  async execute(command: string, args: unknown[], token?: vscode.CancellationToken): Promise<unknown> {
    if (this.view.phase === 'no-folder') {
      throw new Error('open a folder first: Needle indexes and searches the workspace folders');
    }
    if (this.starting && !this.isRunning) {
      await this.starting; // a command issued while the server starts waits for it (bounded by the start timeout)
    }
    const send = async () => {
      const s = this.session;
      if (s && s.everRunning && s.client.state !== State.Running) {
        await this.waitForRunning(s, RESTART_WAIT_MS); // the client restarts a crashed server by itself
      }
      const client = this.session?.client;
      if (!client || client.state !== State.Running) {
        const why = this.view.phase === 'failed' ? `: ${this.view.error}` : '';
        throw new Error(`the Needle language server is not running${why}`);
      }
      return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token);
    };
    try {
      return await send();
    } catch (err) {
      // The server died under this request: once the client has restarted it, ask again (once).
      if (!token?.isCancellationRequested && connectionLost(err) && this.session?.everRunning) {
        await new Promise((r) => setTimeout(r, 200));
        return send();
      }
      throw err;
    }
  }

  report(): string {
    if (this.view.phase === 'failed') {
      return `Needle server not running: ${this.view.error}`;
    }
    if (this.view.phase === 'no-folder') {
      return 'Needle: no folder is open; the server starts when one is added.';
    }
    return this.view.status ? statusReport(this.view.status) : `Needle server: ${this.view.phase}`;
  }

  async stop(): Promise<void> {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    const s = this.session;
    this.session = undefined;
    this.starting = undefined;
    this.progress.clear();
    if (s) {
      await this.endSession(s);
    }
    if (!this.disposed && !this.session) {
      this.setView({ phase: 'stopped', status: undefined }); // unless another restart started one meanwhile
    }
  }

  /** Stops whatever runs or is starting (a wedged start included) and starts again with the current settings. */
  async restart(): Promise<void> {
    this.crashes.reset();
    await this.stop();
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
