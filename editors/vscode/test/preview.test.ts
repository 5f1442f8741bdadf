import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transientTabs } from '../src/lib/preview';

test('Escape closes the preview tabs of previewed files that were not open before the picker', () => {
  const tabs = [
    { uri: 'file:///a.py', isPreview: false }, // the editor the search started from
    { uri: 'file:///b.py', isPreview: true }, // shown only as a preview: closed
    { uri: 'file:///c.py', isPreview: true }, // a preview tab the user had open before: kept
    { uri: 'file:///d.py', isPreview: false }, // opened to the side (pinned): kept
    { uri: undefined, isPreview: true }, // the settings editor, say: kept
  ];
  const before = new Set(['file:///a.py', 'file:///c.py']);
  const previewed = new Set(['file:///a.py', 'file:///b.py', 'file:///c.py', 'file:///d.py']);
  assert.deepEqual(transientTabs(tabs, before, previewed).map((t) => t.uri), ['file:///b.py']);
  assert.deepEqual(transientTabs(tabs, before, new Set()), []);
});
