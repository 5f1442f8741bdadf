// Turning server answers into what the QuickPick shows.
import { cellLabel, opensAsCell, parseCell } from './notebook';
import type { Folder, SearchResult } from './types';
import { displayPath, formatLocation, normalizeRange } from './uri';

/** Defensive parse of a `needle.search` / `needle.similar` answer; malformed entries are dropped. */
export function parseResults(value: unknown): SearchResult[] {
  if (!Array.isArray(value)) {
    return [];
  }
  const out: SearchResult[] = [];
  for (const v of value) {
    const o = v as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || typeof o.uri !== 'string') {
      continue;
    }
    const range = normalizeRange(o.range);
    if (!range) {
      continue;
    }
    const result: SearchResult = {
      uri: o.uri,
      range,
      name: typeof o.name === 'string' ? o.name : '',
      kind: typeof o.kind === 'string' ? o.kind : '',
      language: typeof o.language === 'string' ? o.language : '',
      score: typeof o.score === 'number' && Number.isFinite(o.score) ? o.score : 0,
      weak: o.weak === true,
      snippet: typeof o.snippet === 'string' ? o.snippet : '',
    };
    const cell = parseCell(o.cell);
    if (cell) {
      result.cell = cell;
    }
    out.push(result);
  }
  return out;
}

const KIND_ICONS: Record<string, string> = {
  function: 'symbol-function',
  method: 'symbol-method',
  class: 'symbol-class',
  block: 'symbol-namespace',
  text: 'symbol-text',
};

/** Codicon name for a chunk kind. */
export function kindIcon(kind: string): string {
  return KIND_ICONS[kind] ?? 'symbol-misc';
}

/** Scores are cosine similarities (~0..1) or fused ranks (~0.01..0.05): keep 2 significant digits. */
export function formatScore(score: number): string {
  if (!Number.isFinite(score)) {
    return '';
  }
  const a = Math.abs(score);
  if (a === 0) {
    return '0';
  }
  return a >= 0.1 ? score.toFixed(2) : score.toPrecision(2);
}

/** A one-line preview of a snippet: the first non-blank lines, whitespace collapsed. */
export function snippetPreview(snippet: string, maxLength = 160): string {
  const lines = snippet
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  let text = lines.join('  ').replace(/\s+/g, ' ');
  if (text.length > maxLength) {
    text = `${text.slice(0, Math.max(0, maxLength - 1)).trimEnd()}…`;
  }
  return text;
}

/** The title of a result: its name, or kind and file when it has none (module-level blocks, text). */
export function resultTitle(r: SearchResult, folders: readonly Folder[]): string {
  if (r.name) {
    return r.name;
  }
  const path = displayPath(r.uri, folders);
  const file = path.split('/').pop() ?? path;
  return `${r.kind || 'code'} in ${file}`;
}

export interface ItemView {
  label: string;
  description: string;
  detail: string;
}

/** Where a result is, for people: `path:line`, or in a notebook `path · cell 3, line 5` (the .ipynb's own line
 * is nothing its notebook editor shows). */
export function resultLocation(r: SearchResult, folders: readonly Folder[]): string {
  const path = displayPath(r.uri, folders);
  return opensAsCell(r) ? `${path} · ${cellLabel(r.cell)}` : formatLocation(path, r.range);
}

/** QuickPick item text of a result: `$(icon) name`, `path:line · score` (and "weak match" below the server's
 * good-match line: one real hit padded with near-misses must not look like ten), snippet preview. */
export function resultItem(r: SearchResult, folders: readonly Folder[]): ItemView {
  const loc = resultLocation(r, folders);
  const score = formatScore(r.score);
  const shown = score ? `${loc} · ${score}` : loc;
  return {
    label: `$(${kindIcon(r.kind)}) ${resultTitle(r, folders)}`,
    description: r.weak ? `${shown} · weak match` : shown,
    detail: snippetPreview(r.snippet),
  };
}
