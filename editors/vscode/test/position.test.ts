import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namePosition, similarPosition } from '../src/lib/position';

test('the cursor goes to the definition name, past decorators and comments', () => {
  const lines = [
    '# parse_config_file is documented below',
    '@cache',
    'def parse_config_file(path):',
    '    return parse_config_file_impl(path)',
  ];
  assert.deepEqual(namePosition(lines, { line: 0, character: 0 }, 'parse_config_file'), { line: 2, character: 4 });
});

test('a method is found by its own name, not its class', () => {
  const lines = ['class Cache:', '    def get(self, key):', '        return self.data.get(key)'];
  assert.deepEqual(namePosition(lines, { line: 1, character: 0 }, 'Cache.get'), { line: 1, character: 8 });
});

test('whole words only; no name falls back to the range start', () => {
  const lines = ['function formatMoneyAmount() {}', 'function formatMoney(x) {}'];
  assert.deepEqual(namePosition(lines, { line: 0, character: 0 }, 'formatMoney'), { line: 1, character: 9 });
  assert.deepEqual(namePosition(lines, { line: 1, character: 2 }, ''), { line: 1, character: 2 });
  assert.deepEqual(namePosition(lines, { line: 0, character: 0 }, 'absent'), { line: 0, character: 0 });
});

test('Find Similar Code reads a selection from its first non-blank character, not from the cursor', () => {
  const lines = ['', '    def render(self):', '        return 1', '', '    def measure(self):', '        return 2'];
  const lineText = (i: number) => lines[i];
  // Whole lines selected with Shift+Down: the cursor ends at column 0 of the next method's line.
  const down = { start: { line: 1, character: 0 }, end: { line: 4, character: 0 }, active: { line: 4, character: 0 } };
  assert.deepEqual(similarPosition(down, lineText), { line: 1, character: 4 });
  // Started on the blank line above the function: the function, not the blank line.
  const fromBlank = { start: { line: 0, character: 0 }, end: { line: 2, character: 16 }, active: { line: 2, character: 16 } };
  assert.deepEqual(similarPosition(fromBlank, lineText), { line: 1, character: 4 });
  // Selected upwards: the same.
  assert.deepEqual(similarPosition({ ...down, active: down.start }, lineText), { line: 1, character: 4 });
  // No selection: the cursor.
  const cursor = { line: 5, character: 3 };
  assert.deepEqual(similarPosition({ start: cursor, end: cursor, active: cursor }, lineText), cursor);
  // Only blanks selected: its start.
  const blank = { start: { line: 3, character: 0 }, end: { line: 4, character: 0 }, active: { line: 4, character: 0 } };
  assert.deepEqual(similarPosition(blank, lineText), { line: 3, character: 0 });
});
