// Restricted Mode: settings that can run code or write files are read from the user's own settings only
// when the workspace is not trusted. A cloned repository's .vscode/settings.json could otherwise set
// `needle.server.env` (PYTHONPATH + a sitecustomize.py in the repo runs code in the server), point
// `needle.model` at a folder of pickled weights, send `needle.indexDir` into ~/.ssh, or change what is
// indexed and kept (`needle.exclude`, `needle.maxFileBytes`).

/** Keys under `needle.` that a workspace may not set in Restricted Mode (package.json lists the same). */
export const RESTRICTED_KEYS = [
  'server.path',
  'server.args',
  'server.env',
  'model',
  'indexDir',
  'exclude',
  'maxFileBytes',
] as const;

/** The shape of `WorkspaceConfiguration.inspect()` that matters here. */
export interface Inspected<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

export function isRestricted(key: string): boolean {
  return (RESTRICTED_KEYS as readonly string[]).includes(key);
}

/**
 * The value a setting takes: the usual precedence (folder, workspace, user, default) when the workspace is
 * trusted or the key is harmless; for a restricted key in an untrusted workspace, the user's value or the
 * default, whatever the workspace says.
 */
export function effectiveValue<T>(key: string, inspected: Inspected<T> | undefined, trusted: boolean): T | undefined {
  if (!inspected) {
    return undefined;
  }
  if (trusted || !isRestricted(key)) {
    return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue ?? inspected.defaultValue;
  }
  return inspected.globalValue ?? inspected.defaultValue;
}

/**
 * A `needle` configuration section as sent to the server (`workspace/configuration`), with every restricted
 * key replaced by its user-level value (or removed) when the workspace is not trusted.
 */
export function restrictSection(
  section: unknown,
  userValue: (key: string) => unknown,
  trusted: boolean,
): unknown {
  if (trusted || section === null || typeof section !== 'object' || Array.isArray(section)) {
    return section;
  }
  const out = structuredClone(section) as Record<string, unknown>;
  for (const key of RESTRICTED_KEYS) {
    const parts = key.split('.');
    let node: Record<string, unknown> = out;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        node[part] = {};
      }
      node = node[part] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1];
    const value = userValue(key);
    if (value === undefined) {
      delete node[last];
    } else {
      node[last] = value;
    }
  }
  return out;
}
