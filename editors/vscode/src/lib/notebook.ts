// Jupyter notebooks: a result's cell (the server says which, and the lines in it) and, for Find Similar Code, a
// notebook cell's editor back in the server's terms. No `vscode` import: unit-tested with node's test runner.
import type { CellLocation, SearchResult } from './types';
import { lineSpan, normalizeRange } from './uri';

/** URI scheme of the documents of notebook cells (each cell's editor has one). */
export const CELL_SCHEME = 'vscode-notebook-cell';

/** The `cell` of a server result, or undefined when it has none or it is malformed. */
export function parseCell(value: unknown): CellLocation | undefined {
  const o = value as { index?: unknown; range?: unknown } | null;
  if (typeof o !== 'object' || o === null || !Number.isInteger(o.index) || (o.index as number) < 0) {
    return undefined;
  }
  const range = normalizeRange(o.range);
  return range ? { index: o.index as number, range } : undefined;
}

/** Whether a result opens as a cell of a notebook: one the server placed in a cell, of a `.ipynb` file. */
export function opensAsCell(r: SearchResult): r is SearchResult & { cell: CellLocation } {
  return r.cell !== undefined && /\.ipynb$/i.test(r.uri.split(/[?#]/)[0]);
}

/** 0-based first and last line of a result in its cell, within a cell of `lineCount` lines. */
export function cellLines(cell: CellLocation, lineCount: number): { first: number; last: number } {
  const { first, last } = lineSpan(cell.range);
  const end = Math.max(0, lineCount - 1);
  return { first: Math.min(first - 1, end), last: Math.min(last - 1, end) };
}

/** "cell 3, line 5" (1-based, as people count) for a result in a notebook. */
export function cellLabel(cell: CellLocation): string {
  return `cell ${cell.index + 1}, line ${cell.range.start.line + 1}`;
}

/** A notebook as Find Similar Code sees it: its URI and the URIs of its cells' documents, in order. */
export interface NotebookCells {
  uri: string;
  cells: readonly string[];
}

/** The notebook and cell index of a cell's document (`vscode-notebook-cell:` URI), or undefined. */
export function cellOf(documentUri: string, notebooks: readonly NotebookCells[]): { notebook: string; index: number } | undefined {
  for (const nb of notebooks) {
    const index = nb.cells.indexOf(documentUri);
    if (index >= 0) {
      return { notebook: nb.uri, index };
    }
  }
  return undefined;
}
