import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// out/test/manifest.test.js -> the extension folder
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));

test('the start timeout is a setting with a default', () => {
  const p = manifest.contributes.configuration.properties['needle.server.startTimeout'];
  assert.equal(p.type, 'number');
  assert.equal(p.default, 30);
});
