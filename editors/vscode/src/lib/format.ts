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

// `$(name)` and `$(name~spin)`: what a QuickPick label, description and detail render as an icon.
const ICON_SYNTAX = /\$\([A-Za-z0-9-]+(?:~[A-Za-z]+)?\)/g;
// Control and format characters (a line break, ESC, bidi overrides such as U+202E, zero-width characters) but
// the tab: in a label a bidi override reorders what follows it ("invoice\u202efdp.py" reads "invoiceyp.pdf").
const INVISIBLE = /(?!\t)[\p{Cc}\p{Cf}]/gu;

/** Indexed text (a name, a path, code) as a QuickPick shows it literally: `$(date)` in a shell snippet or
 * `$(CC)` in a Makefile was rendered as an icon (an unknown one: nothing), so the code read `x=` with its
 * command gone; invisible characters are spelt out as `\u202e`, `\n`, `\x1b` (as `needle search` prints them). */
export function shownLiterally(text: string): string {
  return text
    .replace(INVISIBLE, (ch) => {
      const code = ch.codePointAt(0) ?? 0;
      const hex = code.toString(16);
      if (ch === '\n' || ch === '\r') {
        return ch === '\n' ? '\\n' : '\\r';
      }
      return code < 0x100 ? `\\x${hex.padStart(2, '0')}` : code < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\U${hex.padStart(8, '0')}`;
    })
    // VS Code prints `\$(name)` as the text `$(name)`, and a backslash before it stays a backslash.
    .replace(ICON_SYNTAX, (icon) => `\\${icon}`);
}

/** QuickPick item text of a result: `$(icon) name`, `path:line · score` (and "weak match" below the server's
 * good-match line: one real hit padded with near-misses must not look like ten), snippet preview. */
export function resultItem(r: SearchResult, folders: readonly Folder[]): ItemView {
  const loc = shownLiterally(resultLocation(r, folders));
  const score = formatScore(r.score);
  const shown = score ? `${loc} · ${score}` : loc;
  return {
    label: `$(${kindIcon(r.kind)}) ${shownLiterally(resultTitle(r, folders))}`,
    description: r.weak ? `${shown} · weak match` : shown,
    detail: shownLiterally(snippetPreview(r.snippet)),
  };
}
