import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatScore, kindIcon, parseResults, resultItem, resultTitle, shownLiterally, snippetPreview } from '../src/lib/format';

const folders = [{ name: 'proj', uri: 'file:///w/proj' }];
const raw = {
  uri: 'file:///w/proj/pkg/config.py',
  range: { start: { line: 11, character: 0 }, end: { line: 25, character: 0 } },
  name: 'parse_config_file',
  kind: 'function',
  language: 'python',
  score: 0.8312,
  snippet: 'def parse_config_file(path):\n    """Parse an INI file."""\n\n    return {}\n',
};

test('parseResults keeps well-formed entries', () => {
  const out = parseResults([raw, { uri: 1 }, null, { uri: 'file:///x', range: {} }, { ...raw, score: 'x', name: 3 }]);
  assert.equal(out.length, 2);
  assert.equal(out[0].name, 'parse_config_file');
  assert.equal(out[1].score, 0);
  assert.equal(out[1].name, '');
  assert.deepEqual(parseResults({}), []);
});

test('resultItem shows name, path:line, score and a preview', () => {
  const item = resultItem(parseResults([raw])[0], folders);
  assert.equal(item.label, '$(symbol-function) parse_config_file');
  assert.equal(item.description, 'pkg/config.py:12 · 0.83');
  assert.equal(item.detail, 'def parse_config_file(path): """Parse an INI file.""" return {}');
  const weak = resultItem(parseResults([{ ...raw, score: 0.12, weak: true }])[0], folders);
  assert.equal(weak.description, 'pkg/config.py:12 · 0.12 · weak match');
});

test('untitled chunks get a title', () => {
  const r = parseResults([{ ...raw, name: '', kind: 'block' }])[0];
  assert.equal(resultTitle(r, folders), 'block in config.py');
});

test('formatScore', () => {
  assert.equal(formatScore(0.8312), '0.83');
  assert.equal(formatScore(0.032787), '0.033');
  assert.equal(formatScore(0), '0');
  assert.equal(formatScore(NaN), '');
  assert.equal(formatScore(1), '1.00');
});

test('snippetPreview truncates', () => {
  assert.equal(snippetPreview('a\n\n  b  c\n', 50), 'a b c');
  const long = snippetPreview('x'.repeat(300), 20);
  assert.equal(long.length, 20);
  assert.ok(long.endsWith('…'));
});

test('kindIcon', () => {
  assert.equal(kindIcon('class'), 'symbol-class');
  assert.equal(kindIcon('method'), 'symbol-method');
  assert.equal(kindIcon('weird'), 'symbol-misc');
});

test('indexed text shows literally: $(...) is no icon, invisible characters are spelt out', () => {
  // A Makefile or shell snippet: `$(CC)` and `$(date)` were rendered as (unknown) icons, i.e. not at all.
  const make = resultItem(parseResults([{ ...raw, name: 'build $(TARGET)', snippet: 'all:\n\t$(CC) -o $(OUT) main.c\nx=$(date)' }])[0], folders);
  assert.equal(make.label, '$(symbol-function) build \\$(TARGET)'); // the kind's own icon stays an icon
  assert.equal(make.detail, 'all: \\$(CC) -o \\$(OUT) main.c x=\\$(date)');
  assert.equal(shownLiterally('echo \\$(pwd) $(sync~spin)'), 'echo \\\\$(pwd) \\$(sync~spin)'); // the backslash stays
  // A file name with a bidi override read as another file ("invoiceyp.pdf"); a line break or ESC in a name.
  const rtl = resultItem(parseResults([{ ...raw, uri: 'file:///w/proj/invoice%E2%80%AEfdp.py', name: 'a\nb\u001b[2Jc\u200bd' }])[0], folders);
  assert.equal(rtl.description, 'invoice\\u202efdp.py:12 · 0.83');
  assert.equal(rtl.label, '$(symbol-function) a\\nb\\x1b[2Jc\\u200bd');
  assert.equal(shownLiterally('tab\there \u{e0001}'), 'tab\there \\U000e0001');
});
