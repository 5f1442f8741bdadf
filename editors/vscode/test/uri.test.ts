import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseName, displayPath, fileUriPath, formatLocation, isInsideFolders, lineSpan, normalizeRange, sliceLines } from '../src/lib/uri';

const one = [{ name: 'proj', uri: 'file:///home/u/proj' }];
const two = [...one, { name: 'lib', uri: 'file:///home/u/lib%20x' }];

test('fileUriPath decodes and normalises', () => {
  assert.equal(fileUriPath('file:///home/u/a%20b.py'), '/home/u/a b.py');
  assert.equal(fileUriPath('file:///C%3A/x/y.py'), '/c:/x/y.py');
  assert.equal(fileUriPath('file:///c:/x/y.py'), '/c:/x/y.py');
  assert.equal(fileUriPath('file://server/share/a'), '//server/share/a');
  assert.equal(fileUriPath('file:///home/u/'), '/home/u');
  assert.equal(fileUriPath('untitled:Untitled-1'), undefined);
  assert.equal(fileUriPath('file:///bad%zz'), '/bad%zz');
});

test('displayPath is workspace-relative', () => {
  assert.equal(displayPath('file:///home/u/proj/pkg/config.py', one), 'pkg/config.py');
  assert.equal(displayPath('file:///home/u/lib%20x/m.js', two), 'lib/m.js');
  assert.equal(displayPath('file:///home/u/proj/a.py', two), 'proj/a.py');
  assert.equal(displayPath('file:///elsewhere/a.py', one), '/elsewhere/a.py');
  assert.equal(displayPath('file:///home/u/project2/a.py', one), '/home/u/project2/a.py');
  assert.equal(displayPath('file:///C%3A/w/a.py', [{ name: 'w', uri: 'file:///c%3A/w' }]), 'a.py');
  assert.equal(displayPath('file:///c:/z/a.py', []), 'C:/z/a.py');
  assert.equal(displayPath('vscode-remote://x/y', one), 'vscode-remote://x/y');
});

test('nested folders pick the deepest', () => {
  const nested = [{ name: 'outer', uri: 'file:///w' }, { name: 'inner', uri: 'file:///w/sub' }];
  assert.equal(displayPath('file:///w/sub/a.py', nested), 'inner/a.py');
});

test('isInsideFolders', () => {
  assert.ok(isInsideFolders('file:///home/u/proj/x.py', one));
  assert.ok(!isInsideFolders('file:///home/u/projx/x.py', one));
  assert.ok(!isInsideFolders('https://x', one));
});

test('baseName', () => {
  assert.equal(baseName('file:///a/b/c.py'), 'c.py');
  assert.equal(baseName('/a/b/'), 'b');
});

test('normalizeRange validates and orders', () => {
  assert.deepEqual(normalizeRange({ start: { line: 3, character: 0 }, end: { line: 9, character: 4 } }), {
    start: { line: 3, character: 0 },
    end: { line: 9, character: 4 },
  });
  assert.deepEqual(normalizeRange({ start: { line: 9, character: 0 }, end: { line: 3, character: 0 } })?.start.line, 3);
  assert.deepEqual(normalizeRange({ start: { line: -2, character: 0 }, end: { line: 1, character: 0 } })?.start.line, 0);
  assert.equal(normalizeRange({ start: { line: 1.5, character: 0 }, end: { line: 1, character: 0 } }), undefined);
  assert.equal(normalizeRange({ start: { line: 1 } }), undefined);
  assert.equal(normalizeRange(null), undefined);
});

test('lineSpan is 1-based and ignores a column-0 end', () => {
  assert.deepEqual(lineSpan({ start: { line: 11, character: 0 }, end: { line: 20, character: 8 } }), { first: 12, last: 21 });
  assert.deepEqual(lineSpan({ start: { line: 11, character: 0 }, end: { line: 21, character: 0 } }), { first: 12, last: 21 });
  assert.deepEqual(lineSpan({ start: { line: 4, character: 2 }, end: { line: 4, character: 0 } }), { first: 5, last: 5 });
});

test('formatLocation', () => {
  const r = { start: { line: 11, character: 0 }, end: { line: 20, character: 8 } };
  assert.equal(formatLocation('a.py', r), 'a.py:12');
  assert.equal(formatLocation('a.py', r, true), 'a.py:12-21');
});

test('sliceLines', () => {
  assert.equal(sliceLines('a\r\nb\nc\nd', 2, 3), 'b\nc');
  assert.equal(sliceLines('a\nb', 2, 10), 'b');
});
