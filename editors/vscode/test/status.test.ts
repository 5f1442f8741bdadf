import assert from 'node:assert/strict';
import { test } from 'node:test';
import { folderSummary, formatWhen, indexingNote, parseStatus, stateKey, statusBarView, statusReport, totals } from '../src/lib/status';

const ready = {
  state: 'ready',
  folders: [
    { root: '/w/a', indexDir: '/w/a/.needle', model: 'minilm', files: 3, chunks: 12, state: 'ready', lastUpdate: '2024-05-01T10:20:00' },
    { root: '/w/b', files: 1, chunks: 1, state: 'ready', lastUpdate: null },
  ],
};

test('parseStatus is defensive', () => {
  const s = parseStatus(ready)!;
  assert.equal(s.state, 'ready');
  assert.equal(s.folders.length, 2);
  assert.deepEqual(totals(s), { files: 4, chunks: 13 });
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus({ folders: [{ root: '/x', state: 'indexing' }] })!.state, 'indexing');
  assert.equal(parseStatus({})!.state, 'unknown');
  assert.equal(parseStatus({ folders: [null, 3] })!.folders.length, 0);
});

test('status bar while starting, indexing, ready, failed', () => {
  assert.match(statusBarView({ phase: 'starting' }).text, /loading~spin/);
  const idx = statusBarView({ phase: 'running', progress: { title: 'Needle: indexing', message: '40/100 files', percentage: 99 } });
  assert.equal(idx.text, '$(sync~spin) Needle'); // a file percentage is no measure of embedding work
  assert.equal(idx.tooltip, 'Needle: indexing — 40/100 files');
  assert.equal(statusBarView({ phase: 'running', progress: { title: 'T' } }).text, '$(sync~spin) Needle');
  const r = statusBarView({ phase: 'running', status: parseStatus(ready) });
  assert.equal(r.text, '$(search) Needle');
  assert.match(r.tooltip, /ready — 4 files, 13 chunks/);
  const f = statusBarView({ phase: 'failed', error: 'not found' });
  assert.ok(f.error);
  assert.match(f.tooltip, /not found/);
  assert.match(statusBarView({ phase: 'running', status: { state: 'indexing', folders: [] } }).tooltip, /indexing \(0 files, 0 chunks so far\)/);
  assert.match(statusBarView({ phase: 'running', status: { state: 'odd', folders: [] } }).tooltip, /odd/);
  assert.match(statusBarView({ phase: 'stopped' }).text, /circle-slash/);
  const home = parseStatus({ state: 'none', folders: [], message: 'nothing is indexed: not indexing /root: it is the home folder' });
  assert.equal(home?.message, 'nothing is indexed: not indexing /root: it is the home folder');
  assert.match(statusBarView({ phase: 'running', status: home }).tooltip, /home folder/);
  const cut = parseStatus({ state: 'partial', folders: [], message: 'big: indexing was cancelled' });
  assert.match(statusBarView({ phase: 'running', status: cut }).tooltip, /big: indexing was cancelled/);
  assert.match(statusBarView({ phase: 'running', status: cut }).text, /warning/);
});

test('while indexing, one status bar item counts chunks from needle.status', () => {
  const s = parseStatus({
    state: 'indexing',
    folders: [
      { root: '/w/a', state: 'indexing', progress: { filesDone: 40, filesTotal: 120, chunksEmbedded: 1234, chunksToEmbed: 1300 } },
      { root: '/w/b', state: 'ready', files: 3, chunks: 9 },
    ],
  })!;
  const v = statusBarView({ phase: 'running', status: s, progress: { title: 'Needle: indexing a', percentage: 99 } });
  assert.equal(v.text, '$(sync~spin) Needle 1,234 chunks');
  assert.equal(v.tooltip, 'Needle: indexing — 1,234 chunks · 40/120 files');
  assert.equal(indexingNote(s), 'Still indexing (1,234 chunks · 40/120 files so far): results cover what is indexed so far.');
  assert.equal(indexingNote(parseStatus(ready)), undefined);
  assert.equal(indexingNote({ state: 'starting', folders: [] }), 'Still indexing: results cover what is indexed so far.');
});

test('a folder whose indexing failed shows a warning', () => {
  const s = parseStatus({ state: 'ready', folders: [{ root: '/w/a', name: 'a', state: 'error', message: 'disk full' }] })!;
  const v = statusBarView({ phase: 'running', status: s });
  assert.equal(v.text, '$(warning) Needle');
  assert.ok(v.error);
  assert.match(v.tooltip, /failed for a: disk full/);
  assert.equal(folderSummary(s.folders[0]).title, 'a');
  assert.match(folderSummary(s.folders[0]).detail, /disk full$/);
});

test('formatWhen', () => {
  assert.equal(formatWhen(null), 'never');
  assert.equal(formatWhen('2024-05-01T10:20:00'), '2024-05-01 10:20');
  assert.equal(formatWhen('garbage'), 'garbage');
  const secs = formatWhen(1714558800);
  const ms = formatWhen(1714558800000);
  assert.equal(secs, ms);
});

test('folder summary and report', () => {
  const s = parseStatus(ready)!;
  const one = folderSummary(s.folders[0]);
  assert.equal(one.title, '/w/a');
  assert.match(one.detail, /^3 files · 12 chunks · model minilm · updated 2024-05-01 10:20 · index \/w\/a\/.needle$/);
  assert.match(folderSummary(s.folders[1]).detail, /1 file · 1 chunk · updated never/);
  const rep = statusReport(s);
  assert.match(rep, /^Needle index: ready\n {2}\/w\/a \[ready\]: 3 files/);
  assert.match(statusReport({ state: 'ready', folders: [] }), /no workspace folder/);
  // files left out say why (an exclude setting, a size cap), in words: the server's keys are `too_large`...
  const left = parseStatus({ folders: [{ root: '/w/c', files: 4, chunks: 9, skipped: { excluded: 2, too_large: 1, binary: 0 } }] })!;
  assert.match(folderSummary(left.folders[0]).detail, /^4 files · 9 chunks · 3 files left out \(excluded 2, too large 1\) · updated/);
  assert.equal(parseStatus({ folders: [{ root: '/w/d', skipped: {} }] })!.folders[0].skipped, undefined);
});

test('a query adapter in use says what it learned from', () => {
  const adapted = (queryAdapter: unknown) =>
    folderSummary(parseStatus({ folders: [{ root: '/w/a', files: 1, chunks: 2, queryAdapter }] })!.folders[0]).detail;
  assert.match(adapted({ events: 12, inUse: true, fitted: '2026-12-05T15:00:00+00:00' }), / · learned from 12 opened results$/);
  assert.match(adapted({ events: 1, inUse: true }), /learned from 1 opened result$/);
  assert.doesNotMatch(adapted({ events: 12, inUse: false }), /learned/); // fitted for another model: unused
  assert.doesNotMatch(adapted(null), /learned/);
  assert.doesNotMatch(adapted({ events: 'many', inUse: true }), /learned/);
});

test('a window without a folder says to open one, without an error', () => {
  const v = statusBarView({ phase: 'no-folder' });
  assert.equal(v.error, false);
  assert.match(v.tooltip, /open a folder/);
});

test('stateKey changes with the phase and the index state, not with the counts', () => {
  const indexing = (n: number) => parseStatus({ state: 'indexing', folders: [{ root: '/w', state: 'indexing', progress: { chunksEmbedded: n } }] });
  assert.equal(stateKey('running', indexing(10)), stateKey('running', indexing(500)));
  assert.notEqual(stateKey('running', indexing(10)), stateKey('running', parseStatus(ready)));
  assert.notEqual(stateKey('starting', undefined), stateKey('running', undefined));
  const rebuilt = (msg?: string) => parseStatus({ state: 'ready', folders: [{ root: '/w', state: 'ready', message: msg }] });
  assert.notEqual(stateKey('running', rebuilt('deleted while in use; it is being rebuilt')), stateKey('running', rebuilt()));
});
