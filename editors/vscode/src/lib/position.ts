// Where the cursor goes when a result opens: on the definition's name, not at the start of a selection.
import type { LspPosition } from './types';

/** How many lines below a result's start the name may sit (decorators, annotations, doc comments). */
const NAME_SEARCH_LINES = 30;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Position of the result's own name (`Class.method` -> `method`) as a whole word in its first lines,
 * skipping comment lines; the start of the range when the name is not found (module blocks, text).
 */
export function namePosition(lines: readonly string[], start: LspPosition, name: string): LspPosition {
  const last = name.split(/[.:#]/).filter(Boolean).pop();
  if (!last) {
    return start;
  }
  const word = new RegExp(`(^|[^\\w$])(${escapeRegExp(last)})(?![\\w$])`);
  const end = Math.min(lines.length, start.line + NAME_SEARCH_LINES);
  for (let i = start.line; i < end; i++) {
    const text = lines[i];
    if (/^\s*(#|\/\/|\*|\/\*)/.test(text)) {
      continue;
    }
    const m = word.exec(i === start.line ? text.slice(start.character) : text);
    if (m) {
      const offset = i === start.line ? start.character : 0;
      return { line: i, character: offset + m.index + m[1].length };
    }
  }
  return start;
}

/**
 * Where Find Similar Code asks about: the cursor, or with a selection its first non-blank character. A selection
 * is read from its start, not from the cursor: selecting a function by whole lines (Shift+Down, a drag down the
 * gutter) leaves the cursor at column 0 of the line after it, which is often the next function's `def`.
 */
export function similarPosition(
  selection: { start: LspPosition; end: LspPosition; active: LspPosition },
  lineText: (line: number) => string,
): LspPosition {
  const { start, end } = selection;
  if (start.line === end.line && start.character === end.character) {
    return selection.active;
  }
  // A selection that ends at column 0 holds nothing of its last line.
  const last = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
  for (let line = start.line; line <= last; line++) {
    const from = line === start.line ? start.character : 0;
    const text = lineText(line);
    const at = text.slice(from).search(/\S/);
    if (at >= 0 && (line !== end.line || from + at < end.character)) {
      return { line, character: from + at };
    }
  }
  return start;
}
