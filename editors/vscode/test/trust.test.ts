import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RESTRICTED_KEYS, effectiveValue, restrictSection } from '../src/lib/trust';

// out/test/trust.test.js -> the extension folder
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));

test('package.json restricts exactly the keys the code restricts', () => {
  const listed: string[] = manifest.capabilities.untrustedWorkspaces.restrictedConfigurations;
  assert.deepEqual([...listed].sort(), RESTRICTED_KEYS.map((k) => `needle.${k}`).sort());
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
});

test('every setting that starts a process, loads files or writes files is restricted', () => {
  const props: Record<string, { scope?: string }> = manifest.contributes.configuration.properties;
  // needle.feedback only turns the local open-event log on or off, inside the index folder Needle writes anyway;
  // needle.rerank only turns the re-ranker on or off (which model it loads comes from the server's environment).
  const harmless = new Set(['needle.search.maxResults', 'needle.search.debounceMs', 'needle.trace.server',
    'needle.feedback', 'needle.rerank']);
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
  assert.equal(restrictSection(section, () => undefined, true), section);
});
