// Restricted Mode: settings that can run code or write files are read from the user's own settings only
// when the workspace is not trusted. A cloned repository's .vscode/settings.json could otherwise set
// `needle.server.env` (PYTHONPATH + a sitecustomize.py in the repo runs code in the server), point
// `needle.model` at a folder of pickled weights, send `needle.indexDir` into ~/.ssh, make the server index
// (and write an index into) any folder with `needle.extraRoots`, or change what is indexed and kept
// (`needle.exclude`, `needle.maxFileBytes`).
//
// The rule is an allow-list: in an untrusted workspace only the keys in HARMLESS_KEYS keep the workspace's
// values; every other key under `needle.` (the restricted ones, and any key this extension does not know, such
// as a setting a newer server reads) takes the user's value or the default. Every channel to the server goes
// through `serverSection`: initializationOptions, workspace/didChangeConfiguration and the answers to
// workspace/configuration.

/** Keys under `needle.` that a workspace may not set in Restricted Mode. package.json lists the declared ones
 * (`extraRoots` is a server setting the extension does not declare: it is restricted all the same). */
export const RESTRICTED_KEYS = [
  'server.path',
  'server.args',
  'server.env',
  'model',
  'indexDir',
  'exclude',
  'maxFileBytes',
  'extraRoots',
] as const;

/** Keys under `needle.` whose workspace value is used even in Restricted Mode: they start nothing, load
 * nothing and write nothing (feedback only turns the open-event log inside the index folder on or off; rerank
 * only turns the shipped re-ranker on or off). */
export const HARMLESS_KEYS = [
  'search.maxResults',
  'search.debounceMs',
  'trace.server',
  'server.startTimeout',
  'feedback',
  'rerank',
] as const;

/** Top-level keys that group settings (`needle.server.path` is `{server: {path}}` in the section). */
const GROUPS = new Set(['server', 'search', 'trace']);

/** The shape of `WorkspaceConfiguration.inspect()` that matters here. */
export interface Inspected<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

export function isHarmless(key: string): boolean {
  return (HARMLESS_KEYS as readonly string[]).includes(key);
}

/** Whether an untrusted workspace's value of `needle.<key>` is ignored: every key but the harmless ones. */
export function isRestricted(key: string): boolean {
  return !isHarmless(key);
}

/**
 * The value a setting takes: the usual precedence (folder, workspace, user, default) when the workspace is
 * trusted or the key is harmless; for any other key in an untrusted workspace, the user's value or the
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

/** A plain JSON copy (VS Code hands configuration values out as read-only proxies, which structuredClone refuses). */
function toJSON(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function setPath(out: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = out;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) {
      node[part] = {};
    }
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/**
 * A `needle` configuration section as the server may see it. Trusted: a copy of the section. Untrusted: the
 * harmless keys as the section has them; every other key (restricted or unknown) replaced by `userValue(key)`
 * (the user's value or the default), or left out when that is undefined. The input is never modified.
 */
export function restrictSection(
  section: unknown,
  userValue: (key: string) => unknown,
  trusted: boolean,
): Record<string, unknown> {
  const src = isPlainObject(section) ? (toJSON(section) as Record<string, unknown>) : {};
  if (trusted) {
    return src;
  }
  const out: Record<string, unknown> = {};
  const keep = (key: string, value: unknown) => {
    const v = isHarmless(key) ? value : userValue(key);
    if (v !== undefined) {
      setPath(out, key, toJSON(v));
    }
  };
  for (const [k, v] of Object.entries(src)) {
    if (GROUPS.has(k) && isPlainObject(v)) {
      for (const [sub, value] of Object.entries(v)) {
        keep(`${k}.${sub}`, value);
      }
    } else {
      keep(k, v);
    }
  }
  // A restricted key the section does not carry (it never does for an unset one) still gets the user's value.
  for (const key of RESTRICTED_KEYS) {
    const v = userValue(key);
    if (v !== undefined && !hasPath(out, key)) {
      setPath(out, key, toJSON(v));
    }
  }
  return out;
}

function hasPath(obj: Record<string, unknown>, key: string): boolean {
  let node: unknown = obj;
  for (const part of key.split('.')) {
    if (!isPlainObject(node) || !(part in node)) {
      return false;
    }
    node = node[part];
  }
  return true;
}

/** How `serverSection` reads the configuration: the raw section and each key's inspect(). */
export interface ConfigSource {
  /** `getConfiguration(undefined, scope).get('needle')`: the merged section, unknown keys included. */
  section(): unknown;
  inspect(key: string): Inspected<unknown> | undefined;
}

/** The `needle` section sent to the server on every channel, trust-filtered. */
export function serverSection(source: ConfigSource, trusted: boolean): Record<string, unknown> {
  return restrictSection(source.section(), (key) => effectiveValue(key, source.inspect(key), false), trusted);
}
