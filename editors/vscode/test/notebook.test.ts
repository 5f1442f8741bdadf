import assert from 'node:assert/strict';
import { test } from 'node:test';
import { similarArguments, similarUnavailable } from '../src/lib/args';
import { parseResults, resultItem } from '../src/lib/format';
import { cellLabel, cellLines, cellOf, opensAsCell, parseCell } from '../src/lib/notebook';

const folders = [{ name: 'proj', uri: 'file:///w/proj' }];
// What the server answers for load_sales in tests/fixtures/formats/sales.ipynb: line 35 of the JSON, lines 5-7 of
// the second cell (0-based: cell 1, lines 4-6, the end at the start of line 7).
const inNotebook = {
  uri: 'file:///w/proj/sales.ipynb',
  range: { start: { line: 34, character: 0 }, end: { line: 36, character: 55 } },
  name: 'load_sales',
  kind: 'function',
  language: 'python',
  score: 0.71,
  snippet: 'def load_sales(path):',
  cell: { index: 1, range: { start: { line: 4, character: 0 }, end: { line: 7, character: 0 } } },
};

test('a result in a notebook keeps its cell; a malformed cell is dropped, the result kept', () => {
  const [r, bad, negative] = parseResults([inNotebook, { ...inNotebook, cell: { index: '1' } }, { ...inNotebook, cell: { index: -1, range: inNotebook.cell.range } }]);
  assert.deepEqual(r.cell, inNotebook.cell);
  assert.equal(bad.cell, undefined);
  assert.equal(negative.cell, undefined);
  assert.equal(parseCell(null), undefined);
  assert.ok(opensAsCell(r));
  assert.ok(!opensAsCell(bad), 'without a cell it opens as text');
  assert.ok(!opensAsCell({ ...r, uri: 'file:///w/proj/notes.md' }), 'only a .ipynb opens as a notebook');
  assert.ok(opensAsCell({ ...r, uri: 'file:///w/proj/A.IPYNB' }));
});

test('a notebook result is shown by its cell and its line there, counted from 1', () => {
  const r = parseResults([inNotebook])[0];
  assert.equal(resultItem(r, folders).description, 'sales.ipynb · cell 2, line 5 · 0.71');
  assert.equal(cellLabel(r.cell!), 'cell 2, line 5');
});

test('the lines of a result in its cell: whole lines, kept inside the cell', () => {
  const cell = parseCell(inNotebook.cell)!;
  assert.deepEqual(cellLines(cell, 9), { first: 4, last: 6 });
  assert.deepEqual(cellLines(cell, 5), { first: 4, last: 4 }, 'a cell that shrank since it was indexed');
  assert.deepEqual(cellLines(cell, 2), { first: 1, last: 1 });
  const oneLine = parseCell({ index: 0, range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } } })!;
  assert.deepEqual(cellLines(oneLine, 1), { first: 0, last: 0 });
});

test('a cell document is found in its notebook', () => {
  const notebooks = [
    { uri: 'file:///w/proj/a.ipynb', cells: ['vscode-notebook-cell:/w/proj/a.ipynb#W0', 'vscode-notebook-cell:/w/proj/a.ipynb#W1'] },
    { uri: 'untitled:Untitled-1.ipynb', cells: ['vscode-notebook-cell:Untitled-1.ipynb#W0'] },
  ];
  assert.deepEqual(cellOf('vscode-notebook-cell:/w/proj/a.ipynb#W1', notebooks), { notebook: 'file:///w/proj/a.ipynb', index: 1 });
  assert.deepEqual(cellOf('vscode-notebook-cell:Untitled-1.ipynb#W0', notebooks), { notebook: 'untitled:Untitled-1.ipynb', index: 0 });
  assert.equal(cellOf('file:///w/proj/a.py', notebooks), undefined);
});

test('Find Similar Code from a cell asks about the notebook, that cell and the line in it', () => {
  assert.deepEqual(similarArguments('file:///w/proj/a.ipynb', { line: 5, character: 4 }, 10, undefined, 1),
    [{ uri: 'file:///w/proj/a.ipynb', position: { line: 5, character: 4 }, k: 10, cell: 1 }]);
  assert.deepEqual(similarArguments('file:///w/proj/a.ipynb', { line: 0, character: 0 }, 10, 'x = 1\n', 0),
    [{ uri: 'file:///w/proj/a.ipynb', position: { line: 0, character: 0 }, k: 10, text: 'x = 1\n', cell: 0 }]);
  assert.equal(similarUnavailable('file:///w/proj/a.ipynb', 'notebook'), undefined);
  assert.equal(similarUnavailable('untitled:Untitled-1.ipynb', 'notebook'),
    'Find Similar Code works on files in the workspace folders, and this notebook is not saved yet. Save it in a workspace folder first.');
});
