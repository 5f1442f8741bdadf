// Building the arguments of the server's commands, the server command line and the
// initialization options, from plain values.
import type { LspPosition } from './types';

export const COMMANDS = {
  search: 'needle.search',
  similar: 'needle.similar',
  reindex: 'needle.reindex',
  status: 'needle.status',
} as const;

export interface SearchQuery {
  query: string;
  lang?: string;
  kind?: string;
  glob?: string;
  exclude?: string[];
  /** Folders or files as typed after `in:` (resolved by `resolveWithin`). */
  within?: string[];
}

/**
 * Split inline filters off a typed query (the Neovim plugin parses the same syntax):
 * `lang:python kind:function glob:src/** glob:!dist/** in:src/net parse a config file`
 * -> {query: "parse a config file", lang: "python", kind: "function", glob: "src/**", exclude: ["dist/**"],
 * within: ["src/net"]}.
 */
export function parseQuery(text: string): SearchQuery {
  const out: SearchQuery = { query: '' };
  const words: string[] = [];
  const exclude: string[] = [];
  const within: string[] = [];
  for (const tok of text.trim().split(/\s+/)) {
    const m = /^(lang|kind|glob|in):(.+)$/.exec(tok);
    if (m && m[1] === 'in') {
      within.push(m[2]);
    } else if (m && m[1] === 'lang') {
      out.lang = m[2];
    } else if (m && m[1] === 'kind') {
      out.kind = m[2];
    } else if (m && m[1] === 'glob' && m[2].startsWith('!')) {
      if (m[2].length > 1) {
        exclude.push(m[2].slice(1));
      }
    } else if (m && m[1] === 'glob') {
      out.glob = m[2];
    } else if (tok) {
      words.push(tok);
    }
  }
  out.query = words.join(' ');
  if (exclude.length) {
    out.exclude = exclude;
  }
  if (within.length) {
    out.within = within;
  }
  return out;
}

export interface ResolvedWithin {
  /** Absolute paths of the folders or files that exist. */
  paths: string[];
  /** What was typed for those that name nothing. */
  missing: string[];
}

/**
 * The folders or files typed after `in:`, as absolute paths: an absolute path or `~/...` as it is, a relative one
 * from each workspace folder where it exists (`./` first is the same), or from the one a multi-root workspace
 * names first (`in:backend/src` in a workspace whose folder is named `backend`). `exists` tells whether a path is
 * there; `join` joins a folder and a relative path.
 */
export function resolveWithin(
  typed: readonly string[],
  folders: readonly { name: string; path: string }[],
  exists: (path: string) => boolean,
  join: (folder: string, rel: string) => string,
  home?: string,
): ResolvedWithin {
  const out: ResolvedWithin = { paths: [], missing: [] };
  for (const raw of typed) {
    let found: string[] = [];
    if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) {
      found = exists(raw) ? [raw] : [];
    } else if (home && (raw === '~' || raw.startsWith('~/'))) {
      const p = home + raw.slice(1);
      found = exists(p) ? [p] : [];
    } else {
      const rel = raw.replace(/^\.[\\/]/, '');
      const [head, ...rest] = rel.split(/[\\/]/);
      const named = folders.filter((f) => folders.length > 1 && f.name === head);
      if (named.length) {
        found = named.map((f) => (rest.length ? join(f.path, rest.join('/')) : f.path)).filter(exists);
      }
      if (!found.length) {
        found = folders.map((f) => (rel === '.' || rel === '' ? f.path : join(f.path, rel))).filter(exists);
      }
    }
    if (found.length) {
      out.paths.push(...found.filter((p) => !out.paths.includes(p)));
    } else {
      out.missing.push(raw);
    }
  }
  return out;
}

export interface SearchArgument {
  query: string;
  k: number;
  lang?: string;
  kind?: string;
  glob?: string;
  exclude?: string[];
  /** URIs of the folders or files to search in only (Search in Folder). */
  within?: string[];
}

/** `arguments` of `needle.search`, or undefined when there is nothing to search for; `within`: folder or file URIs. */
export function searchArguments(q: SearchQuery, k: number, within?: string[]): [SearchArgument] | undefined {
  const query = q.query.trim();
  if (!query) {
    return undefined;
  }
  const arg: SearchArgument = { query, k: clampInt(k, 1, 200, 20) };
  if (q.lang) {
    arg.lang = q.lang;
  }
  if (q.kind) {
    arg.kind = q.kind;
  }
  if (q.glob) {
    arg.glob = q.glob;
  }
  if (q.exclude?.length) {
    arg.exclude = q.exclude;
  }
  if (within?.length) {
    arg.within = within;
  }
  return [arg];
}

export interface SimilarArgument {
  uri: string;
  position: LspPosition;
  /** How many results (`needle.search.maxResults`). */
  k: number;
  /** The document's text when it has unsaved edits (in a notebook: the cell's). */
  text?: string;
  /** In the notebook `uri`: the cell (0-based) `position` is in, relative to that cell. */
  cell?: number;
}

export function similarArguments(uri: string, position: LspPosition, k: number, text?: string, cell?: number): [SimilarArgument] {
  const arg: SimilarArgument = {
    uri,
    position: { line: position.line, character: position.character },
    k: clampInt(k, 1, 200, 20),
  };
  if (text !== undefined) {
    arg.text = text;
  }
  if (cell !== undefined) {
    arg.cell = cell;
  }
  return [arg];
}

/**
 * Why Find Similar Code cannot run on a document (undefined when it can): the server reads saved local files.
 * For a notebook cell, `documentUri` is its notebook's.
 */
export function similarUnavailable(documentUri: string, what: 'document' | 'notebook' = 'document'): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(documentUri)?.[1]?.toLowerCase();
  if (scheme === 'file') {
    return undefined;
  }
  const why = scheme === 'untitled' ? `this ${what} is not saved yet` : `this ${what} is not a local file (${scheme ?? 'no scheme'}:)`;
  return `Find Similar Code works on files in the workspace folders, and ${why}. Save it in a workspace folder first.`;
}

export function reindexArguments(uri?: string): [{ uri?: string }] {
  return [uri ? { uri } : {}];
}

export function clampInt(value: unknown, min: number, max: number, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n)) {
    return fallback;
  }
  return Math.min(max, Math.max(min, Math.round(n)));
}

/** The settings of the `needle` section the server reads (the rest are the extension's own). */
export interface PassThroughSettings {
  model?: unknown;
  indexDir?: unknown;
  maxFileBytes?: unknown;
  exclude?: unknown;
  feedback?: unknown;
  rerank?: unknown;
  extraRoots?: unknown;
}

/**
 * `initializationOptions` from a (trust-filtered) `needle` section: the set server settings, unset ones left to
 * the server's defaults; the extension's own keys (`server`, `search`, `trace`) are not sent.
 */
export function initializationOptions(s: PassThroughSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof s.model === 'string' && s.model.trim()) {
    out.model = s.model.trim();
  }
  if (typeof s.indexDir === 'string' && s.indexDir.trim()) {
    out.indexDir = s.indexDir.trim();
  }
  if (typeof s.maxFileBytes === 'number' && Number.isFinite(s.maxFileBytes) && s.maxFileBytes > 0) {
    out.maxFileBytes = Math.floor(s.maxFileBytes);
  }
  if (Array.isArray(s.exclude) && s.exclude.length) {
    out.exclude = s.exclude.filter((g) => typeof g === 'string' && g.trim() !== '');
  }
  if (typeof s.feedback === 'boolean') {
    out.feedback = s.feedback;
  }
  if (typeof s.rerank === 'boolean') {
    out.rerank = s.rerank;
  }
  if (Array.isArray(s.extraRoots) && s.extraRoots.length) {
    out.extraRoots = s.extraRoots.filter((p) => typeof p === 'string' && p.trim() !== '');
  }
  return out;
}

export interface CommandVars {
  workspaceFolder?: string;
  home?: string;
}

function expand(value: string, vars: CommandVars): string {
  let v = value;
  if (vars.home && (v === '~' || v.startsWith('~/'))) {
    v = vars.home + v.slice(1);
  }
  return v.replace(/\$\{(workspaceFolder|userHome)\}/g, (whole, name: string) => {
    const rep = name === 'workspaceFolder' ? vars.workspaceFolder : vars.home;
    return rep ?? whole;
  });
}

/** The server command line from the `needle.server.*` settings. */
export function serverCommand(
  path: unknown,
  args: unknown,
  vars: CommandVars = {},
): { command: string; args: string[] } {
  const p = typeof path === 'string' && path.trim() ? path.trim() : 'needle';
  const a = Array.isArray(args) ? args.filter((x): x is string => typeof x === 'string') : ['lsp'];
  return { command: expand(p, vars), args: a.map((x) => expand(x, vars)) };
}

/** A command without a directory part is looked up on PATH. */
export function isBareCommand(command: string): boolean {
  return !command.includes('/') && !command.includes('\\');
}

/**
 * Why a command path cannot be used as given, or undefined. A relative path with a folder part (`.venv/bin/needle`)
 * would be checked from the extension host's folder but run from the workspace folder's (the process's cwd): the
 * check said "does not exist" for a file that is there, and in Restricted Mode a user setting would have run a
 * file of the untrusted folder. It has to be absolute, or start with `${workspaceFolder}` or `~`.
 */
export function relativeCommandProblem(command: string, isAbsolute: (p: string) => boolean): string | undefined {
  if (isBareCommand(command) || isAbsolute(command)) {
    return undefined;
  }
  const rest = command.replace(/^\.[\\/]/, '');
  return `"${command}" is a relative path: give an absolute one, such as \${workspaceFolder}/${rest}`;
}

/** Where a bare command would be found on PATH (`exists` tells whether a file is executable). */
export function findOnPath(
  command: string,
  pathEnv: string | undefined,
  exists: (file: string) => boolean,
  sep = ':',
  exts: readonly string[] = [''],
): string | undefined {
  if (!isBareCommand(command)) {
    return exists(command) ? command : undefined;
  }
  for (const dir of (pathEnv ?? '').split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const file = `${dir.replace(/[\\/]+$/, '')}/${command}${ext}`;
      if (exists(file)) {
        return file;
      }
    }
  }
  return undefined;
}
