import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tabKey, transientTabs } from '../src/lib/preview';

test('Escape closes the preview tabs of previewed files that were not open before the picker', () => {
  const before = [
    { uri: 'file:///a.py', group: 1, isPreview: false }, // the editor the search started from
    { uri: 'file:///c.py', group: 1, isPreview: true }, // a preview tab the user had open
    { uri: 'file:///e.py', group: 2, isPreview: false }, // open in the other group
  ];
  const tabs = [
    ...before,
    { uri: 'file:///b.py', group: 1, isPreview: true }, // shown only as a preview: closed
    { uri: 'file:///d.py', group: 1, isPreview: false }, // opened to the side (pinned): kept
    { uri: 'file:///e.py', group: 1, isPreview: true }, // previewed here, though open in group 2: closed
    { uri: undefined, group: 1, isPreview: true }, // the settings editor, say: kept
  ];
  const openBefore = new Set(before.map(tabKey));
  const previewed = new Set(['file:///a.py', 'file:///b.py', 'file:///c.py', 'file:///d.py', 'file:///e.py']);
  assert.deepEqual(
    transientTabs(tabs, openBefore, previewed).map((t) => `${t.group} ${t.uri}`),
    ['1 file:///b.py', '1 file:///e.py'],
  );
  assert.deepEqual(transientTabs(tabs, openBefore, new Set()), []);
});
