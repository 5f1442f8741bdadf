import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openedArguments } from '../src/lib/feedback';
import type { SearchResult } from '../src/lib/types';

function hit(name: string, line: number): SearchResult {
  const range = { start: { line, character: 0 }, end: { line: line + 3, character: 1 } };
  return { uri: `file:///w/${name}.py`, range, name, kind: 'function', language: 'python', score: 0.5, weak: false, snippet: '' };
}

test('openedArguments lists the results ranked above the opened one', () => {
  const results = [hit('a', 0), hit('b', 10), hit('c', 20)];
  assert.deepEqual(openedArguments(' parse config ', results, results[2]), [{
    query: 'parse config', uri: 'file:///w/c.py', line: 20, name: 'c',
    above: [{ uri: 'file:///w/a.py', line: 0 }, { uri: 'file:///w/b.py', line: 10 }],
  }]);
  assert.deepEqual(openedArguments('q', results, results[0])?.[0].above, []);
});

test('openedArguments records nothing without a query or for a result not in the list', () => {
  const results = [hit('a', 0)];
  assert.equal(openedArguments('   ', results, results[0]), undefined);
  assert.equal(openedArguments('q', results, hit('a', 0)), undefined);
});
