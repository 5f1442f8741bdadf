import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { initializationOptions } from '../src/lib/args';
import { HARMLESS_KEYS, RESTRICTED_KEYS, effectiveValue, restrictSection, serverSection, type Inspected } from '../src/lib/trust';

// out/test/trust.test.js -> the extension folder
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));

test('package.json restricts exactly the declared keys the code restricts', () => {
  const listed: string[] = manifest.capabilities.untrustedWorkspaces.restrictedConfigurations;
  const declared = new Set(Object.keys(manifest.contributes.configuration.properties));
  const restricted = RESTRICTED_KEYS.map((k) => `needle.${k}`);
  assert.deepEqual([...listed].sort(), restricted.filter((k) => declared.has(k)).sort());
  // extraRoots is read by the server, not declared by the extension: restricted all the same
  assert.ok(restricted.includes('needle.extraRoots'));
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
});

test('every setting that starts a process, loads files or writes files is restricted', () => {
  const props: Record<string, { scope?: string }> = manifest.contributes.configuration.properties;
  // needle.feedback only turns the local open-event log on or off, inside the index folder Needle writes anyway;
  // needle.rerank only turns the re-ranker on or off (which model it loads comes from the server's environment).
  const harmless = new Set(['needle.search.maxResults', 'needle.search.debounceMs', 'needle.trace.server',
    'needle.feedback', 'needle.rerank', 'needle.server.startTimeout']);
  assert.deepEqual(new Set(HARMLESS_KEYS.map((k) => `needle.${k}`)), harmless);
  const listed = new Set<string>(manifest.capabilities.untrustedWorkspaces.restrictedConfigurations);
  for (const key of Object.keys(props)) {
    assert.ok(harmless.has(key) || listed.has(key), `${key} is neither restricted nor known harmless`);
  }
});

test('an untrusted workspace cannot set a restricted key; a trusted one can', () => {
  const env = { globalValue: { A: 'user' }, workspaceValue: { PYTHONPATH: '.' }, defaultValue: {} };
  assert.deepEqual(effectiveValue('server.env', env, false), { A: 'user' });
  assert.deepEqual(effectiveValue('server.env', env, true), { PYTHONPATH: '.' });
  const dir = { workspaceFolderValue: '~/.ssh', defaultValue: null };
  assert.equal(effectiveValue('indexDir', dir, false), null);
  assert.equal(effectiveValue('indexDir', dir, true), '~/.ssh');
  // Harmless settings keep the workspace's value either way.
  assert.equal(effectiveValue('search.maxResults', { workspaceValue: 50, defaultValue: 20 }, false), 50);
});

test('the section sent to the server loses the workspace values of restricted keys', () => {
  const section = {
    server: { path: '/repo/evil', args: ['lsp'], env: { PYTHONPATH: '/repo' } },
    indexDir: '/home/u/.ssh', model: '/repo/weights', exclude: ['!.env'], maxFileBytes: 1, search: { maxResults: 50 },
  };
  const user: Record<string, unknown> = { 'server.path': 'needle', exclude: [] };
  const out = restrictSection(section, (k) => user[k], false) as Record<string, any>;
  assert.deepEqual(out, { server: { path: 'needle' }, exclude: [], search: { maxResults: 50 } });
  assert.equal(section.indexDir, '/home/u/.ssh', 'the input is not modified');
  assert.deepEqual(restrictSection(section, () => undefined, true), section);
});

/** A configuration as VS Code holds it: per key, the default, user, workspace and folder values. */
function source(values: Record<string, Inspected<unknown>>) {
  const pick = (i: Inspected<unknown>) => i.workspaceFolderValue ?? i.workspaceValue ?? i.globalValue ?? i.defaultValue;
  return {
    section() {
      const out: Record<string, any> = {};
      for (const [k, i] of Object.entries(values)) {
        const v = pick(i);
        if (v === undefined) continue;
        const [a, b] = k.split('.');
        if (b) (out[a] ??= {})[b] = v;
        else out[a] = v;
      }
      return out;
    },
    inspect: (key: string) => values[key],
  };
}

test('an untrusted workspace cannot add folders to index with needle.extraRoots, on any channel', () => {
  const cfg = source({
    extraRoots: { workspaceValue: ['/home/u/.ssh'] }, // undeclared by the extension, read by the server
    'server.env': { defaultValue: {}, workspaceValue: { PYTHONPATH: '.' } },
    'search.maxResults': { defaultValue: 20, workspaceValue: 3 },
    rerank: { defaultValue: true, workspaceValue: false },
    someFutureKey: { workspaceValue: '/anything' }, // a key the extension does not know: restricted too
  });
  const untrusted = serverSection(cfg, false);
  // workspace/configuration answers and workspace/didChangeConfiguration carry this section...
  assert.deepEqual(untrusted, { server: { env: {} }, search: { maxResults: 3 }, rerank: false });
  // ...and initializationOptions are built from it
  assert.deepEqual(initializationOptions(untrusted), { rerank: false });
  // trusted: the workspace's values count
  const trusted = serverSection(cfg, true);
  assert.deepEqual(trusted.extraRoots, ['/home/u/.ssh']);
  assert.deepEqual(initializationOptions(trusted).extraRoots, ['/home/u/.ssh']);
});

test("the user's own extraRoots still reach the server in Restricted Mode", () => {
  const cfg = source({ extraRoots: { globalValue: ['/srv/lib'], workspaceValue: ['/etc'] } });
  assert.deepEqual(serverSection(cfg, false), { extraRoots: ['/srv/lib'] });
  assert.deepEqual(effectiveValue('extraRoots', cfg.inspect('extraRoots'), false), ['/srv/lib']);
});

test('the section may be a read-only proxy, as VS Code hands configuration values out', () => {
  const frozen = new Proxy({ extraRoots: ['/x'], search: new Proxy({ maxResults: 3 }, {}) }, {
    set: () => { throw new Error('read-only'); },
    defineProperty: () => { throw new Error('read-only'); },
  });
  assert.deepEqual(restrictSection(frozen, () => undefined, false), { search: { maxResults: 3 } });
  assert.deepEqual(restrictSection(frozen, () => undefined, true), { extraRoots: ['/x'], search: { maxResults: 3 } });
});
