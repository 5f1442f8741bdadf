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
