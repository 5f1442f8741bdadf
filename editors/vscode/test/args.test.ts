import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clampInt,
  findOnPath,
  initializationOptions,
  isBareCommand,
  parseQuery,
  relativeCommandProblem,
  reindexArguments,
  resolveWithin,
  searchArguments,
  serverCommand,
  similarArguments,
  similarUnavailable,
} from '../src/lib/args';

test('parseQuery splits inline filters', () => {
  assert.deepEqual(parseQuery('  parse a   config file '), { query: 'parse a config file' });
  assert.deepEqual(parseQuery('lang:python glob:src/** read settings'), { query: 'read settings', lang: 'python', glob: 'src/**' });
  assert.deepEqual(parseQuery('kind:function,method read settings'), { query: 'read settings', kind: 'function,method' });
  assert.deepEqual(parseQuery('lang:'), { query: 'lang:' });
  assert.deepEqual(parseQuery('glob:!dist/** glob:!**/*.min.js retry'), { query: 'retry', exclude: ['dist/**', '**/*.min.js'] });
});

test('parseQuery takes in:PATH, as often as given, as the folders or files to search in', () => {
  assert.deepEqual(parseQuery('in:src/net retry with backoff'), { query: 'retry with backoff', within: ['src/net'] });
  assert.deepEqual(parseQuery('in:a in:b/c.py x'), { query: 'x', within: ['a', 'b/c.py'] });
  assert.deepEqual(parseQuery('in: x'), { query: 'in: x' });
});

test('resolveWithin finds a typed path from the workspace folders', () => {
  const there = new Set(['/w/api', '/w/api/src', '/w/api/src/net', '/w/web', '/w/web/src', '/home/u/lib', '/abs/x.py']);
  const exists = (p: string) => there.has(p);
  const join = (a: string, b: string) => `${a}/${b}`;
  const one = [{ name: 'api', path: '/w/api' }];
  const two = [...one, { name: 'web', path: '/w/web' }];
  assert.deepEqual(resolveWithin(['src/net'], one, exists, join), { paths: ['/w/api/src/net'], missing: [] });
  assert.deepEqual(resolveWithin(['./src/net'], one, exists, join), { paths: ['/w/api/src/net'], missing: [] });
  assert.deepEqual(resolveWithin(['.'], one, exists, join), { paths: ['/w/api'], missing: [] });
  // a path every root has answers from each; a root's name first picks that root in a multi-root workspace
  assert.deepEqual(resolveWithin(['src'], two, exists, join), { paths: ['/w/api/src', '/w/web/src'], missing: [] });
  assert.deepEqual(resolveWithin(['web/src'], two, exists, join), { paths: ['/w/web/src'], missing: [] });
  assert.deepEqual(resolveWithin(['web'], two, exists, join), { paths: ['/w/web'], missing: [] });
  assert.deepEqual(resolveWithin(['/abs/x.py', '~/lib'], one, exists, join, '/home/u'), { paths: ['/abs/x.py', '/home/u/lib'], missing: [] });
  assert.deepEqual(resolveWithin(['nope', 'src/net'], one, exists, join), { paths: ['/w/api/src/net'], missing: ['nope'] });
  assert.deepEqual(resolveWithin(['src/net'], [], exists, join), { paths: [], missing: ['src/net'] });
});

test('searchArguments is one object in a list', () => {
  assert.deepEqual(searchArguments({ query: ' x ' }, 10), [{ query: 'x', k: 10 }]);
  assert.deepEqual(searchArguments({ query: 'x', lang: 'js', glob: '*.js' }, 500), [{ query: 'x', k: 200, lang: 'js', glob: '*.js' }]);
  assert.equal(searchArguments({ query: '   ' }, 10), undefined);
  assert.deepEqual(searchArguments({ query: 'x', exclude: ['dist/**'] }, 10), [{ query: 'x', k: 10, exclude: ['dist/**'] }]);
  assert.deepEqual(searchArguments({ query: 'x', kind: 'class' }, 10), [{ query: 'x', k: 10, kind: 'class' }]);
  // Search in Folder: the folders' URIs; none given (or an empty list) searches everywhere
  assert.deepEqual(searchArguments({ query: 'x' }, 10, ['file:///w/src']), [{ query: 'x', k: 10, within: ['file:///w/src'] }]);
  assert.deepEqual(searchArguments({ query: 'x' }, 10, []), [{ query: 'x', k: 10 }]);
});

test('similar and reindex arguments', () => {
  // k is needle.search.maxResults, which package.json says applies to Find Similar Code too
  assert.deepEqual(similarArguments('file:///a.py', { line: 3, character: 4 }, 7), [{ uri: 'file:///a.py', position: { line: 3, character: 4 }, k: 7 }]);
  assert.equal(similarArguments('file:///a.py', { line: 0, character: 0 }, 500)[0].k, 200);
  assert.equal(similarArguments('file:///a.py', { line: 0, character: 0 }, NaN)[0].k, 20);
  // a document with unsaved edits sends its text, so the server reads the function from what the user sees
  assert.deepEqual(similarArguments('file:///a.py', { line: 3, character: 0 }, 20, 'def f():\n    pass\n'),
    [{ uri: 'file:///a.py', position: { line: 3, character: 0 }, k: 20, text: 'def f():\n    pass\n' }]);
  assert.deepEqual(reindexArguments(), [{}]);
  assert.deepEqual(reindexArguments('file:///w'), [{ uri: 'file:///w' }]);
});

test('clampInt', () => {
  assert.equal(clampInt(7.6, 1, 20, 5), 8);
  assert.equal(clampInt('3', 1, 20, 5), 3);
  assert.equal(clampInt(undefined, 1, 20, 5), 5);
  assert.equal(clampInt(-4, 1, 20, 5), 1);
  assert.equal(clampInt(Infinity, 1, 20, 5), 5);
});

test('initializationOptions keeps only set values', () => {
  assert.deepEqual(initializationOptions({ model: null, indexDir: '', maxFileBytes: null, exclude: [] }), {});
  assert.deepEqual(initializationOptions({ model: ' m ', indexDir: '/i', maxFileBytes: 1000.7, exclude: ['*.min.js', ''] }), {
    model: 'm',
    indexDir: '/i',
    maxFileBytes: 1000,
    exclude: ['*.min.js'],
  });
  assert.deepEqual(initializationOptions({ maxFileBytes: -1 }), {});
  // the other server settings pass too; the extension's own keys never do
  assert.deepEqual(
    initializationOptions({ feedback: false, rerank: true, extraRoots: ['/srv/lib', ''], server: { path: 'x' }, search: { maxResults: 3 } } as never),
    { feedback: false, rerank: true, extraRoots: ['/srv/lib'] },
  );
  assert.deepEqual(initializationOptions({ feedback: 'yes', extraRoots: '/one' }), {});
});

test('Find Similar Code runs on local files only, and says why otherwise', () => {
  assert.equal(similarUnavailable('file:///w/a.py'), undefined);
  assert.match(similarUnavailable('untitled:Untitled-1')!, /not saved yet.*Save it/);
  assert.match(similarUnavailable('git:/w/a.py?ref')!, /not a local file \(git:\)/);
});

test('serverCommand defaults and expansion', () => {
  assert.deepEqual(serverCommand(undefined, undefined), { command: 'needle', args: ['lsp'] });
  assert.deepEqual(serverCommand('  ', ['lsp']), { command: 'needle', args: ['lsp'] });
  assert.deepEqual(
    serverCommand('${workspaceFolder}/.venv/bin/python', ['-m', 'codeneedle', 'lsp', 1]),
    { command: '${workspaceFolder}/.venv/bin/python', args: ['-m', 'codeneedle', 'lsp'] },
  );
  assert.deepEqual(serverCommand('${workspaceFolder}/.venv/bin/needle', ['lsp'], { workspaceFolder: '/w', home: '/h' }).command, '/w/.venv/bin/needle');
  assert.deepEqual(serverCommand('~/bin/needle', [], { home: '/h' }).command, '/h/bin/needle');
  assert.deepEqual(serverCommand('${userHome}/n', [], { home: '/h' }).command, '/h/n');
});

test('findOnPath', () => {
  const files = new Set(['/usr/bin/needle', '/opt/x/needle.exe']);
  const exists = (f: string) => files.has(f);
  assert.ok(isBareCommand('needle'));
  assert.ok(!isBareCommand('./needle'));
  assert.equal(findOnPath('needle', '/bin::/usr/bin/', exists), '/usr/bin/needle');
  assert.equal(findOnPath('needle', undefined, exists), undefined);
  assert.equal(findOnPath('needle', '/opt/x', exists, ';', ['', '.exe']), '/opt/x/needle.exe');
  assert.equal(findOnPath('/usr/bin/needle', '', exists), '/usr/bin/needle');
  assert.equal(findOnPath('/nope/needle', '', exists), undefined);
});

test('a relative server path is refused with a way out, not checked from the wrong folder', () => {
  const isAbsolute = (p: string) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p);
  assert.equal(relativeCommandProblem('needle', isAbsolute), undefined); // looked up on PATH
  assert.equal(relativeCommandProblem('/opt/venv/bin/needle', isAbsolute), undefined);
  assert.equal(relativeCommandProblem('C:\\venv\\Scripts\\needle.exe', isAbsolute), undefined);
  assert.equal(
    relativeCommandProblem('.venv/bin/needle', isAbsolute),
    '".venv/bin/needle" is a relative path: give an absolute one, such as ${workspaceFolder}/.venv/bin/needle',
  );
  assert.match(relativeCommandProblem('./needle', isAbsolute) ?? '', /such as \$\{workspaceFolder\}\/needle$/);
});
