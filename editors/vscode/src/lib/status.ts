// Index status: parsing `needle.status`, the status bar item's text and the status report.
import type { FolderProgress, FolderStatus, IndexStatus, ProgressInfo } from './types';

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function parseProgress(value: unknown): FolderProgress | undefined {
  const p = value as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null) {
    return undefined;
  }
  return {
    filesDone: num(p.filesDone),
    filesTotal: num(p.filesTotal),
    chunksEmbedded: num(p.chunksEmbedded),
    chunksToEmbed: num(p.chunksToEmbed),
  };
}

export function parseStatus(value: unknown): IndexStatus | undefined {
  const o = value as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) {
    return undefined;
  }
  const folders: FolderStatus[] = [];
  if (Array.isArray(o.folders)) {
    for (const f of o.folders) {
      const x = f as Record<string, unknown> | null;
      if (typeof x !== 'object' || x === null) {
        continue;
      }
      folders.push({
        root: typeof x.root === 'string' ? x.root : '',
        name: typeof x.name === 'string' ? x.name : undefined,
        message: typeof x.message === 'string' ? x.message : undefined,
        indexDir: typeof x.indexDir === 'string' ? x.indexDir : undefined,
        model: typeof x.model === 'string' ? x.model : undefined,
        files: typeof x.files === 'number' ? x.files : undefined,
        chunks: typeof x.chunks === 'number' ? x.chunks : undefined,
        state: typeof x.state === 'string' ? x.state : undefined,
        lastUpdate:
          typeof x.lastUpdate === 'string' || typeof x.lastUpdate === 'number' ? x.lastUpdate : null,
        progress: parseProgress(x.progress),
        learnedFrom: learnedFrom(x.queryAdapter),
        skipped: skippedCounts(x.skipped),
      });
    }
  }
  let state = typeof o.state === 'string' ? o.state : '';
  if (!state) {
    state = folders.some((f) => f.state === 'indexing') ? 'indexing' : folders.length ? 'ready' : 'unknown';
  }
  return typeof o.message === 'string' ? { state, folders, message: o.message } : { state, folders };
}

/** Files left out by reason (`skipped: {"excluded": 2}`), the reasons with none dropped; undefined for none. */
function skippedCounts(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const [reason, n] of Object.entries(value as Record<string, unknown>)) {
    if (typeof n === 'number' && n > 0) {
      out[reason] = n;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** Open events behind the query adapter searches use (`queryAdapter.events` when `inUse`), else undefined. */
function learnedFrom(value: unknown): number | undefined {
  const a = value as Record<string, unknown> | null;
  if (typeof a !== 'object' || a === null || a.inUse !== true || typeof a.events !== 'number') {
    return undefined;
  }
  return a.events;
}

export type Phase = 'starting' | 'running' | 'failed' | 'stopped' | 'no-folder';

export interface ClientView {
  phase: Phase;
  status?: IndexStatus;
  progress?: ProgressInfo; // set while a `$/progress` begin..end is open
  error?: string;
}

export interface StatusBarView {
  text: string;
  tooltip: string;
  error: boolean;
}

function plural(n: number | undefined, word: string): string {
  const v = n ?? 0;
  return `${v.toLocaleString('en-US')} ${word}${v === 1 ? '' : 's'}`;
}

export function totals(status: IndexStatus): { files: number; chunks: number } {
  return status.folders.reduce(
    (acc, f) => ({ files: acc.files + (f.files ?? 0), chunks: acc.chunks + (f.chunks ?? 0) }),
    { files: 0, chunks: 0 },
  );
}

/** Indexing progress summed over folders: chunks embedded so far and files done of total. */
export function indexingProgress(s: IndexStatus | undefined): FolderProgress | undefined {
  const busy = (s?.folders ?? []).filter((f) => (f.state === 'indexing' || f.state === 'starting') && f.progress);
  if (!busy.length) {
    return undefined;
  }
  return busy.reduce<FolderProgress>(
    (acc, f) => ({
      filesDone: acc.filesDone + (f.progress?.filesDone ?? 0),
      filesTotal: acc.filesTotal + (f.progress?.filesTotal ?? 0),
      chunksEmbedded: acc.chunksEmbedded + (f.progress?.chunksEmbedded ?? 0),
      chunksToEmbed: acc.chunksToEmbed + (f.progress?.chunksToEmbed ?? 0),
    }),
    { filesDone: 0, filesTotal: 0, chunksEmbedded: 0, chunksToEmbed: 0 },
  );
}

/** "1,234 chunks · 40/120 files": what indexing has done so far. */
export function progressText(p: FolderProgress): string {
  const files = p.filesTotal ? ` · ${p.filesDone.toLocaleString('en-US')}/${p.filesTotal.toLocaleString('en-US')} files` : '';
  return `${plural(p.chunksEmbedded, 'chunk')}${files}`;
}

/** "Still indexing" for a search answered during the first index; undefined when nothing is indexing. */
export function indexingNote(s: IndexStatus | undefined): string | undefined {
  if (!s || (s.state !== 'indexing' && s.state !== 'starting')) {
    return undefined;
  }
  const p = indexingProgress(s);
  return `Still indexing${p ? ` (${progressText(p)} so far)` : ''}: results cover what is indexed so far.`;
}

/**
 * Status bar item: one item (the client library's own progress display is not used), counting chunks while
 * indexing, counts when ready, error when the server is down. Progress comes from `needle.status`, which the
 * extension polls while the index builds; a `$/progress` report is only the fallback before the first answer.
 */
export function statusBarView(v: ClientView): StatusBarView {
  switch (v.phase) {
    case 'starting':
      return { text: '$(loading~spin) Needle', tooltip: 'Needle: starting the language server…', error: false };
    case 'failed':
      return {
        text: '$(error) Needle',
        tooltip: `Needle: the language server is not running${v.error ? ` (${v.error})` : ''}. Click for options.`,
        error: true,
      };
    case 'stopped':
      return { text: '$(circle-slash) Needle', tooltip: 'Needle: the language server is stopped.', error: false };
    case 'no-folder':
      return {
        text: '$(circle-slash) Needle',
        tooltip: 'Needle: open a folder to index and search it (the language server starts when a folder is added).',
        error: false,
      };
    default:
      break;
  }
  const counted = indexingProgress(v.status);
  if (counted && (counted.chunksEmbedded > 0 || counted.filesTotal > 0)) {
    const text = progressText(counted);
    return { text: `$(sync~spin) Needle ${plural(counted.chunksEmbedded, 'chunk')}`, tooltip: `Needle: indexing — ${text}`, error: false };
  }
  if (v.progress) {
    // No percentage in the text: a file-based percentage sat at 99% through the whole embedding phase.
    const msg = v.progress.message ? ` — ${v.progress.message}` : '';
    return { text: '$(sync~spin) Needle', tooltip: `${v.progress.title || 'Needle: indexing'}${msg}`, error: false };
  }
  const s = v.status;
  if (!s) {
    return { text: '$(search) Needle', tooltip: 'Needle: click for index status', error: false };
  }
  const t = totals(s);
  const counts = `${plural(t.files, 'file')}, ${plural(t.chunks, 'chunk')}`;
  const broken = s.folders.filter((f) => f.state === 'error' || f.state === 'failed');
  if (broken.length && s.state !== 'indexing') {
    const why = broken.map((f) => `${f.name || f.root}${f.message ? `: ${f.message}` : ''}`).join('; ');
    return { text: '$(warning) Needle', tooltip: `Needle: indexing failed for ${why}. Click for status.`, error: true };
  }
  if (s.state === 'indexing') {
    return { text: '$(sync~spin) Needle', tooltip: `Needle: indexing (${counts} so far)`, error: false };
  }
  if (s.state === 'ready') {
    return { text: '$(search) Needle', tooltip: `Needle: index ready — ${counts}. Click for status.`, error: false };
  }
  if (s.state === 'none') {
    return { text: '$(circle-slash) Needle', tooltip: `Needle: ${s.message ?? 'nothing is indexed'}`, error: false };
  }
  if (s.state === 'partial') {
    const why = s.message ?? 'indexing was cancelled';
    return { text: '$(warning) Needle', tooltip: `Needle: ${why} (${counts}). Click for status.`, error: false };
  }
  return { text: '$(search) Needle', tooltip: `Needle: ${s.state} — ${counts}`, error: false };
}

/**
 * What decides whether a search answer may have changed: the client's phase, the index state and each folder's
 * state and message (not the counts, which move on every poll while indexing). Open pickers re-run their query
 * when it changes.
 */
export function stateKey(phase: Phase, s: IndexStatus | undefined): string {
  const folders = (s?.folders ?? []).map((f) => `${f.root}=${f.state ?? ''}:${f.message ?? ''}`);
  return JSON.stringify([phase, s?.state ?? '', s?.message ?? '', folders]);
}

/** "2024-05-01 12:00" for ISO strings or epoch seconds/milliseconds; "never" when absent. */
export function formatWhen(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') {
    return 'never';
  }
  let d: Date;
  if (typeof value === 'number') {
    d = new Date(value < 1e12 ? value * 1000 : value);
  } else {
    d = new Date(value);
  }
  if (Number.isNaN(d.getTime())) {
    return String(value);
  }
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** One line per folder for the status report. */
export function folderSummary(f: FolderStatus): { title: string; state: string; detail: string } {
  const parts = [
    plural(f.files, 'file'),
    plural(f.chunks, 'chunk'),
    // Why files are missing (an exclude setting, a size cap) is the first thing to look for when one is.
    f.skipped
      ? `${plural(Object.values(f.skipped).reduce((a, b) => a + b, 0), 'file')} left out (${Object.entries(f.skipped)
          .map(([reason, n]) => `${reason.replace(/_/g, ' ')} ${n}`) // the server's keys: `too_large` reads "too large"
          .join(', ')})`
      : '',
    f.model ? `model ${f.model}` : '',
    `updated ${formatWhen(f.lastUpdate)}`,
    f.indexDir ? `index ${f.indexDir}` : '',
    f.learnedFrom !== undefined ? `learned from ${plural(f.learnedFrom, 'opened result')}` : '',
  ].filter(Boolean);
  if (f.message) {
    parts.push(f.message);
  }
  return { title: f.name || f.root || '(no folder)', state: f.state ?? '', detail: parts.join(' · ') };
}

/** Plain-text report of a status (for the log and the information message). */
export function statusReport(s: IndexStatus): string {
  const lines = [`Needle index: ${s.state}`];
  for (const f of s.folders) {
    const x = folderSummary(f);
    lines.push(`  ${x.title}${x.state ? ` [${x.state}]` : ''}: ${x.detail}`);
  }
  if (!s.folders.length) {
    lines.push('  (no workspace folder indexed)');
  }
  return lines.join('\n');
}
