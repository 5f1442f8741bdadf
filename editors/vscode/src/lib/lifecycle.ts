// The server process's life cycle, as plain logic: the start timeout, the crash counter, the tail of the
// server's stderr and the messages that explain a failed start or a crash loop.

/** Thrown by `withTimeout` when the promise did not settle in time. */
export class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

/** `p`, or a TimeoutError after `ms` (the timer never keeps the process alive once `p` settles). */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** The start timeout in milliseconds from `needle.server.startTimeout` (seconds; default 30, 1..600). */
export function startTimeoutMs(value: unknown): number {
  const n = typeof value === 'number' && Number.isFinite(value) ? value : 30;
  return Math.round(Math.min(600, Math.max(1, n)) * 1000);
}

/** Counts unexpected exits of a server that was running: restart it, unless it crashed `max` times in `windowMs`. */
export class CrashCounter {
  private times: number[] = [];
  constructor(
    readonly max = 5,
    readonly windowMs = 3 * 60_000,
  ) {}
  /** Records a crash at `now`; true when the server should be restarted, false when it keeps crashing. */
  record(now: number): boolean {
    this.times = this.times.filter((t) => now - t < this.windowMs);
    this.times.push(now);
    return this.times.length < this.max;
  }
  get count(): number {
    return this.times.length;
  }
  reset(): void {
    this.times = [];
  }
}

/** The last few kilobytes a process wrote (its stderr), for error messages. */
export class OutputTail {
  private text = '';
  constructor(readonly maxChars = 8192) {}
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.maxChars);
  }
  clear(): void {
    this.text = '';
  }
  /** The last `n` non-blank lines, each cut to 300 characters. */
  lines(n = 3): string[] {
    return this.text
      .split(/\r?\n/)
      .map((l) => l.trimEnd())
      .filter((l) => l.trim() !== '')
      .slice(-n)
      .map((l) => (l.length > 300 ? `${l.slice(0, 297)}...` : l));
  }
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/** "the server exited with code 1", "the server was stopped by signal SIGKILL", plus its last stderr lines. */
export function describeExit(exit: ExitInfo | undefined, stderr: readonly string[]): string {
  let what = 'the server closed the connection';
  if (exit && exit.code !== null) {
    what = `the server exited with code ${exit.code}`;
  } else if (exit && exit.signal) {
    what = `the server was stopped by signal ${exit.signal}`;
  }
  return stderr.length ? `${what}; its last output: ${stderr.join(' | ')}` : `${what} (it wrote nothing to stderr)`;
}

const INSTALL_HINT =
  'Install Needle (from its repository: `make setup`, or `make dist` and `pipx install` the wheel) and ' +
  'point the "needle.server.path" setting at its "needle" command.';

/** Whether a start failure looks like Needle is not installed where the settings point. */
export function looksNotInstalled(reason: string): boolean {
  return /not found on PATH|does not exist or is not executable|ENOENT|No module named ['"]?codeneedle/i.test(reason);
}

/** The notification for a server that could not be started. */
export function startFailureMessage(reason: string): string {
  const hint = looksNotInstalled(reason)
    ? INSTALL_HINT
    : 'Check the "needle.server.path" and "needle.server.args" settings; Show Log has the server\'s full output.';
  return `Needle: the language server could not start: ${reason.replace(/\.$/, '')}. ${hint}`;
}

/** The notification for a server that started fine but keeps crashing. */
export function crashLoopMessage(crashes: number, windowMinutes: number, last: string): string {
  return (
    `Needle: the language server keeps crashing (${crashes} times in ${windowMinutes} minutes; ${last}), ` +
    'so it is not restarted again. Show Log has its output; Restart Server tries again.'
  );
}

/** The notification for a start that got no answer in time. */
export function startTimeoutReason(seconds: number): string {
  return (
    `it did not answer the initialize request within ${seconds} s, so it was stopped ` +
    '(a wrong "needle.server.path"/"needle.server.args" that runs another program, or a very slow machine: ' +
    'see "needle.server.startTimeout")'
  );
}
