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

test('Search in Folder is on the Explorer\'s context menu for files and folders, and in the palette for a file\'s folder', () => {
  const menus: Record<string, { command: string; when?: string; group?: string }[]> = manifest.contributes.menus;
  const explorer = menus['explorer/context'].find((m) => m.command === 'needle.searchInFolder');
  assert.equal(explorer?.when, 'resourceScheme == file');
  assert.match(explorer?.group ?? '', /^4_search/, 'beside VS Code\'s own Find in Folder...');
  const palette = menus.commandPalette.find((m) => m.command === 'needle.searchInFolder');
  assert.equal(palette?.when, 'editorIsOpen && resourceScheme == file');
  assert.ok(manifest.contributes.commands.some((c: { command: string; title: string }) =>
    c.command === 'needle.searchInFolder' && c.title === 'Search in Folder'));
});

test('Cancel Indexing is a command of its own (the status bar item is Needle\'s, so the client\'s own cancel button is not shown)', () => {
  assert.ok(manifest.contributes.commands.some((c: { command: string; title: string }) =>
    c.command === 'needle.cancelIndexing' && c.title === 'Cancel Indexing'));
});
