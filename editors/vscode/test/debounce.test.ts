import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { acceptAction, debounce, Sequencer } from '../src/lib/debounce';

test('debounce calls once with the last arguments', async () => {
  const calls: string[] = [];
  const d = debounce((s: string) => calls.push(s), 30);
  d.call('p');
  d.call('pa');
  d.call('par');
  assert.ok(d.pending);
  assert.deepEqual(calls, []);
  await sleep(60);
  assert.deepEqual(calls, ['par']);
  assert.ok(!d.pending);
});

test('debounce cancel and flush', async () => {
  const calls: string[] = [];
  const d = debounce((s: string) => calls.push(s), 30);
  d.call('a');
  d.cancel();
  await sleep(50);
  assert.deepEqual(calls, []);
  d.call('b');
  d.flush();
  assert.deepEqual(calls, ['b']);
  d.flush();
  assert.deepEqual(calls, ['b']);
});

test('debounce with 0 ms is synchronous', () => {
  const calls: number[] = [];
  const d = debounce((n: number) => calls.push(n), 0);
  d.call(1);
  d.call(2);
  assert.deepEqual(calls, [1, 2]);
});

test('Sequencer drops stale answers', () => {
  const s = new Sequencer();
  const a = s.next();
  const b = s.next();
  assert.ok(!s.isLatest(a));
  assert.ok(s.isLatest(b));
  s.invalidate();
  assert.ok(!s.isLatest(b));
});

test('Enter searches text still waiting for the debounce, waits while its search runs, else opens', () => {
  assert.equal(acceptAction(true, false, 'parse conf', 'parse'), 'search');
  // the list shows "parse"'s results while "parse config" is being searched: opening one would open a stale result
  assert.equal(acceptAction(false, true, 'parse config', 'parse'), 'wait');
  assert.equal(acceptAction(false, true, 'parse config', 'parse config'), 'open'); // a re-run of what is shown
  assert.equal(acceptAction(false, false, 'parse config', 'parse config'), 'open');
  assert.equal(acceptAction(false, false, 'parse config', undefined), 'open'); // nothing shown: a message row, no result
});
