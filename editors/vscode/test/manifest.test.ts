import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// out/test/manifest.test.js -> the extension folder
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));

test('Find Similar Code is offered for file documents and notebook cells only (never for untitled documents)', () => {
  const menus: Record<string, { command: string; when?: string }[]> = manifest.contributes.menus;
  for (const menu of ['commandPalette', 'editor/context']) {
    const entry = menus[menu].find((m) => m.command === 'needle.findSimilar');
    assert.ok(entry, `needle.findSimilar in ${menu}`);
    const schemes = /&&\s*\(resourceScheme == file \|\| resourceScheme == vscode-notebook-cell\)$/;
    assert.match(entry.when ?? '', schemes, `${menu}: ${entry.when}`);
    // The only alternative is the scheme of cells (a cell of an untitled notebook gets a message saying why).
    assert.equal((entry.when ?? '').split('||').length, 2, 'no alternative that would let an untitled document in');
  }
});

test('the start timeout is a setting with a default', () => {
  const p = manifest.contributes.configuration.properties['needle.server.startTimeout'];
  assert.equal(p.type, 'number');
  assert.equal(p.default, 30);
});
