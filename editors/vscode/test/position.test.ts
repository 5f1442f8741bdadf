import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namePosition } from '../src/lib/position';

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
