// Which settings tab the "Open Settings" button opens. `needle.server.*` are machine-overridable: in a remote
// window (code-server, Remote - SSH, WSL, Dev Containers) the server starts on the remote machine and reads them
// from the Remote settings, which the User tab neither shows nor applies; a trusted workspace may set them too.

export interface SettingsTarget {
  command: string;
  args: { query: string };
  /** The tab, as the user sees it. */
  tab: 'User' | 'Remote' | 'Workspace';
}

export function settingsTarget(opts: { remoteName?: string; workspaceSetsServer: boolean; trusted: boolean }, query = 'needle.server'): SettingsTarget {
  if (opts.trusted && opts.workspaceSetsServer) {
    return { command: 'workbench.action.openWorkspaceSettings', args: { query }, tab: 'Workspace' };
  }
  if (opts.remoteName) {
    return { command: 'workbench.action.openRemoteSettings', args: { query }, tab: 'Remote' };
  }
  return { command: 'workbench.action.openGlobalSettings', args: { query }, tab: 'User' };
}
