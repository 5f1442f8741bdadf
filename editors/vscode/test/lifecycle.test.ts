import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CrashCounter,
  OutputTail,
  TimeoutError,
  crashLoopMessage,
  describeExit,
  looksNotInstalled,
  startFailureMessage,
  startTimeoutMs,
  startTimeoutReason,
  withTimeout,
} from '../src/lib/lifecycle';

test('withTimeout: a start that never answers is a TimeoutError, a quick one passes through', async () => {
  const never = new Promise<void>(() => undefined);
  const t0 = Date.now();
  await assert.rejects(withTimeout(never, 50), (e: unknown) => e instanceof TimeoutError && e.ms === 50);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await withTimeout(Promise.resolve(3), 50), 3);
  await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 50), /boom/);
});

test('start timeout setting: seconds, default 30, bounded', () => {
  assert.equal(startTimeoutMs(undefined), 30_000);
  assert.equal(startTimeoutMs(2), 2000);
  assert.equal(startTimeoutMs(0), 1000);
  assert.equal(startTimeoutMs(1e9), 600_000);
  assert.equal(startTimeoutMs('5'), 30_000);
  assert.match(startTimeoutReason(30), /did not answer the initialize request within 30 s.*needle\.server\.startTimeout/);
});

test('crash counter: restart four times, the fifth crash in 3 minutes is a crash loop', () => {
  const c = new CrashCounter(5, 180_000);
  for (let i = 0; i < 4; i++) assert.equal(c.record(1000 + i), true);
  assert.equal(c.record(2000), false);
  assert.equal(c.count, 5);
  const d = new CrashCounter(5, 180_000);
  for (let i = 0; i < 10; i++) assert.equal(d.record(i * 60_000), true, 'crashes spread out never stop the restarts');
  d.reset();
  assert.equal(d.count, 0);
});

test('the tail of stderr: last non-blank lines, long ones cut', () => {
  const t = new OutputTail(100);
  t.push('x'.repeat(500) + '\nTraceback (most recent call last):\n');
  t.push('  File "<frozen runpy>"\n\n/usr/bin/python3: No module named codeneedle\n');
  assert.deepEqual(t.lines(2), ['  File "<frozen runpy>"', '/usr/bin/python3: No module named codeneedle']);
  const long = new OutputTail();
  long.push('y'.repeat(400));
  assert.equal(long.lines(1)[0].length, 300);
  t.clear();
  assert.deepEqual(t.lines(), []);
});

test('a server that exits at start: the message gives the exit code and its stderr, not the client library', () => {
  const why = describeExit({ code: 1, signal: null }, ['/usr/bin/python3: No module named codeneedle']);
  assert.equal(why, 'the server exited with code 1; its last output: /usr/bin/python3: No module named codeneedle');
  const msg = startFailureMessage(why);
  assert.match(msg, /could not start: the server exited with code 1; its last output: .*No module named codeneedle\. Install Needle/);
  assert.doesNotMatch(msg, /Pending response|disposed/);
  // /bin/false: an exit code, no output, and no install advice (Needle is not missing: the command is wrong)
  const f = startFailureMessage(describeExit({ code: 1, signal: null }, []));
  assert.match(f, /exited with code 1 \(it wrote nothing to stderr\)\. Check the "needle.server.path" and "needle.server.args"/);
  assert.doesNotMatch(f, /Install Needle/);
  assert.match(describeExit({ code: null, signal: 'SIGKILL' }, []), /stopped by signal SIGKILL/);
  assert.match(describeExit(undefined, []), /closed the connection/);
  assert.ok(looksNotInstalled('"needle" was not found on PATH'));
  assert.ok(looksNotInstalled('spawn /x ENOENT'));
});

test('a crash loop is not a start failure: it says so and points at the log', () => {
  const msg = crashLoopMessage(5, 3, 'the server was stopped by signal SIGKILL');
  assert.match(msg, /keeps crashing \(5 times in 3 minutes; the server was stopped by signal SIGKILL\)/);
  assert.match(msg, /Show Log/);
  assert.doesNotMatch(msg, /could not start|Install Needle/);
});
