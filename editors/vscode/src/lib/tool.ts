// The Copilot language model tool `needle_search`: input validation and the text handed to the model.
import { clampInt } from './args';
import { cellLines, opensAsCell } from './notebook';
import type { Folder, SearchResult } from './types';
import { displayPath, lineSpan, sliceLines } from './uri';

export const TOOL_NAME = 'needle_search';

export interface ToolInput {
  query: string;
  k: number;
}

/** Validates the model's input; throws an Error whose message is shown to the model. */
export function parseToolInput(input: unknown, defaultK = 5): ToolInput {
  const o = input as Record<string, unknown> | null;
  const query = typeof o === 'object' && o !== null && typeof o.query === 'string' ? o.query.trim() : '';
  if (!query) {
    throw new Error('needle_search needs a non-empty "query" string describing the code to find.');
  }
  return { query, k: clampInt(o?.k, 1, 20, defaultK) };
}

export interface ToolTextOptions {
  folders: readonly Folder[];
  /** Full text of result files by URI; when present the code is cut from it instead of the snippet. */
  files?: ReadonlyMap<string, string>;
  /** The text of each cell of the notebooks holding results, by notebook URI: a notebook's code is cut from its
   * cell (its file is JSON). */
  cells?: ReadonlyMap<string, readonly string[]>;
  maxLinesPerResult?: number;
  maxChars?: number;
}

function fence(code: string): string {
  let ticks = '```';
  while (code.includes(ticks)) {
    ticks += '`';
  }
  return ticks;
}

/** The code of one result: its lines cut from the file (a notebook's from its cell) when known, else the server's
 * snippet. */
export function resultCode(
  r: SearchResult,
  files: ReadonlyMap<string, string> | undefined,
  maxLines: number,
  cells?: ReadonlyMap<string, readonly string[]>,
): string {
  let code: string;
  if (opensAsCell(r)) {
    // The .ipynb's lines are JSON strings: only the cell's own text reads as code.
    const cell = cells?.get(r.uri)?.[r.cell.index];
    const lines = cell?.split(/\r?\n/);
    const { first, last } = cellLines(r.cell, lines?.length ?? 0);
    code = lines !== undefined ? lines.slice(first, last + 1).join('\n') : r.snippet;
  } else {
    const { first, last } = lineSpan(r.range);
    const text = files?.get(r.uri);
    code = text !== undefined ? sliceLines(text, first, last) : r.snippet;
  }
  const lines = code.replace(/\s+$/, '').split('\n');
  if (lines.length > maxLines) {
    code = `${lines.slice(0, maxLines).join('\n')}\n… (${lines.length - maxLines} more lines)`;
  } else {
    code = lines.join('\n');
  }
  return code;
}

/** Markdown-ish text: one block per result with path, lines, kind, score and the code. */
export function toolResultText(query: string, results: readonly SearchResult[], opts: ToolTextOptions): string {
  const maxLines = opts.maxLinesPerResult ?? 60;
  const maxChars = opts.maxChars ?? 16000;
  if (!results.length) {
    return `Needle found no code matching "${query}" in the workspace index.`;
  }
  const allWeak = results.every((r) => r.weak);
  const head = allWeak
    ? `Needle found no good match for "${query}"; the ${results.length} nearest code location${results.length === 1 ? '' : 's'} (weak matches):`
    : `Needle found ${results.length} code location${results.length === 1 ? '' : 's'} for "${query}" (best first):`;
  const blocks: string[] = [];
  let used = head.length;
  let omitted = 0;
  results.forEach((r, i) => {
    const { first, last } = lineSpan(opensAsCell(r) ? r.cell.range : r.range);
    const path = displayPath(r.uri, opts.folders);
    const where = opensAsCell(r) ? `${path} cell ${r.cell.index + 1}` : path;
    const what = [r.kind, r.name].filter(Boolean).join(' ');
    const code = resultCode(r, opts.files, maxLines, opts.cells);
    const f = fence(code);
    // Among good matches, a weak one says so (the model would otherwise read every location as an answer).
    const weak = r.weak && !allWeak ? ' — weak match' : '';
    const block =
      `${i + 1}. ${where} lines ${first}-${last}${what ? ` — ${what}` : ''}` +
      `${r.language ? ` (${r.language})` : ''}${weak}\n${f}${r.language}\n${code}\n${f}`;
    if (used + block.length > maxChars && blocks.length) {
      omitted += 1;
      return;
    }
    used += block.length;
    blocks.push(block);
  });
  const tail = omitted ? `\n\n(${omitted} more result${omitted === 1 ? '' : 's'} left out for length.)` : '';
  return `${head}\n\n${blocks.join('\n\n')}${tail}`;
}
