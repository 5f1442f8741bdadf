import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseResults } from '../src/lib/format';
import { parseToolInput, resultCode, toolResultText } from '../src/lib/tool';

const folders = [{ name: 'proj', uri: 'file:///w' }];
const results = parseResults([
  {
    uri: 'file:///w/pkg/config.py',
    range: { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } },
    name: 'parse_config_file',
    kind: 'function',
    language: 'python',
    score: 0.8,
    snippet: 'def parse_config_file(path):\n    ...',
  },
  {
    uri: 'file:///w/web/app.js',
    range: { start: { line: 0, character: 0 }, end: { line: 0, character: 10 } },
    name: '',
    kind: 'block',
    language: 'javascript',
    score: 0.5,
    snippet: 'const x = "```";',
  },
]);

test('parseToolInput', () => {
  assert.deepEqual(parseToolInput({ query: ' config ' }), { query: 'config', k: 5 });
  assert.deepEqual(parseToolInput({ query: 'x', k: 99 }), { query: 'x', k: 20 });
  assert.throws(() => parseToolInput({ k: 3 }), /non-empty "query"/);
  assert.throws(() => parseToolInput(null), /query/);
});

test('tool text lists path, lines and code', () => {
  const files = new Map([['file:///w/pkg/config.py', 'import os\ndef parse_config_file(path):\n    return read(path)\n\nx = 1\n']]);
  const text = toolResultText('parse a config file', results, { folders, files });
  assert.match(text, /^Needle found 2 code locations for "parse a config file"/);
  assert.match(text, /1\. pkg\/config\.py lines 2-3 — function parse_config_file \(python\)\n```python\ndef parse_config_file\(path\):\n {4}return read\(path\)\n```/);
  // the second falls back to the snippet and gets a longer fence because the code holds ```
  assert.match(text, /2\. web\/app\.js lines 1-1 — block \(javascript\)\n````javascript\nconst x = "```";\n````/);
});

test('a notebook result is cut from its cell, not from the JSON of the .ipynb', () => {
  const [cellHit] = parseResults([{
    uri: 'file:///w/sales.ipynb',
    range: { start: { line: 34, character: 0 }, end: { line: 36, character: 50 } },
    name: 'load_sales',
    kind: 'function',
    language: 'python',
    score: 0.7,
    snippet: 'def load_sales(path):',
    cell: { index: 1, range: { start: { line: 2, character: 0 }, end: { line: 4, character: 0 } } },
  }]);
  const cells = new Map([['file:///w/sales.ipynb', ['# Sales', 'import pandas as pd\n\ndef load_sales(path):\n    return pd.read_csv(path)\n']]]);
  const files = new Map([['file:///w/sales.ipynb', '{\n "cells": [\n']]);
  const text = toolResultText('sales', [cellHit], { folders, files, cells });
  assert.match(text, /1\. sales\.ipynb cell 2 lines 3-4 — function load_sales \(python\)\n```python\ndef load_sales\(path\):\n {4}return pd\.read_csv\(path\)\n```/);
  // A notebook the editor could not read: the snippet, never the JSON's lines.
  assert.match(toolResultText('sales', [cellHit], { folders, files }), /```python\ndef load_sales\(path\):\n```/);
});

test('tool text with no results, and length caps', () => {
  assert.match(toolResultText('q', [], { folders }), /no code matching "q"/);
  const capped = toolResultText('q', results, { folders, maxChars: 150 });
  assert.match(capped, /1 more result left out/);
  const long = { ...results[0], snippet: Array.from({ length: 10 }, (_, i) => `l${i}`).join('\n') };
  assert.equal(resultCode(long, undefined, 3), 'l0\nl1\nl2\n… (7 more lines)');
});

test('tool text says "no good match" when every result is weak', () => {
  const weak = parseResults([{ ...results[0], uri: results[0].uri, weak: true, range: results[0].range }]);
  const text = toolResultText('zzqx blorf', weak, { folders });
  assert.match(text, /^Needle found no good match for "zzqx blorf"; the 1 nearest code location \(weak matches\):/);
  assert.match(toolResultText('config', results, { folders }), /^Needle found 2 code locations for "config"/);
  // among good matches, each weak one is marked
  const mixed = parseResults([
    { ...results[0], uri: results[0].uri, range: results[0].range },
    { ...results[1], uri: results[1].uri, range: results[1].range, weak: true },
  ]);
  const text2 = toolResultText('config', mixed, { folders });
  assert.match(text2, /1\. pkg\/config\.py lines 2-3 — function parse_config_file \(python\)\n/);
  assert.match(text2, /2\. web\/app\.js lines 1-1 — block \(javascript\) — weak match\n/);
});
