import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settingsTarget } from '../src/lib/settingsTarget';

test('Open Settings opens the tab where needle.server.* apply', () => {
  // local window: the User tab
  assert.equal(settingsTarget({ workspaceSetsServer: false, trusted: true }).command, 'workbench.action.openGlobalSettings');
  // remote window (code-server, SSH, WSL): machine-overridable settings live in the Remote tab
  const remote = settingsTarget({ remoteName: 'ssh-remote', workspaceSetsServer: false, trusted: true });
  assert.equal(remote.command, 'workbench.action.openRemoteSettings');
  assert.deepEqual(remote.args, { query: 'needle.server' });
  assert.equal(remote.tab, 'Remote');
  // a trusted workspace that sets the command: its value wins, so its tab
  assert.equal(settingsTarget({ remoteName: 'x', workspaceSetsServer: true, trusted: true }).tab, 'Workspace');
  // an untrusted one's value is ignored: not there
  assert.equal(settingsTarget({ remoteName: 'x', workspaceSetsServer: true, trusted: false }).tab, 'Remote');
});
