// URI and range helpers: file URIs <-> paths, workspace-relative display paths, LSP range checks.
import type { Folder, LspRange } from './types';

/** Decoded path of a `file:` URI (POSIX style, drive letters lower-cased), or undefined. */
export function fileUriPath(uri: string): string | undefined {
  const m = /^file:\/\/([^/]*)(\/.*)?$/i.exec(uri.trim());
  if (!m) {
    return undefined;
  }
  let path: string;
  try {
    path = decodeURIComponent(m[2] ?? '/');
  } catch {
    path = m[2] ?? '/';
  }
  // file:///c:/x -> /c:/x ; normalise the drive letter so both encodings compare equal
  path = path.replace(/^\/([A-Za-z]):/, (_s, d: string) => `/${d.toLowerCase()}:`);
  if (m[1] && m[1] !== 'localhost') {
    path = `//${m[1]}${path}`; // UNC
  }
  return path.replace(/\/+$/, '') || '/';
}

/** Last path segment of a URI or path. */
export function baseName(uriOrPath: string): string {
  const p = fileUriPath(uriOrPath) ?? uriOrPath;
  const parts = p.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : p;
}

/**
 * Path shown to the user: relative to the workspace folder holding the file
 * (prefixed by the folder name when there are several folders), else the full path.
 */
export function displayPath(uri: string, folders: readonly Folder[]): string {
  const path = fileUriPath(uri);
  if (path === undefined) {
    return uri;
  }
  let best: { folder: Folder; root: string } | undefined;
  for (const folder of folders) {
    const root = fileUriPath(folder.uri);
    if (root === undefined) {
      continue;
    }
    const inside = path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
    if (inside && (!best || root.length > best.root.length)) {
      best = { folder, root };
    }
  }
  if (!best) {
    return path.replace(/^\/([a-z]):/, (_s, d: string) => `${d.toUpperCase()}:`);
  }
  const rel = path === best.root ? '' : path.slice(best.root === '/' ? 1 : best.root.length + 1);
  if (folders.length > 1) {
    return rel ? `${best.folder.name}/${rel}` : best.folder.name;
  }
  return rel || baseName(path);
}

/** True when `uri` lies inside one of the folders. */
export function isInsideFolders(uri: string, folders: readonly Folder[]): boolean {
  const path = fileUriPath(uri);
  if (path === undefined) {
    return false;
  }
  return folders.some((f) => {
    const root = fileUriPath(f.uri);
    return root !== undefined && (path === root || path.startsWith(root === '/' ? '/' : `${root}/`));
  });
}

function isPos(p: unknown): p is { line: number; character: number } {
  const o = p as { line?: unknown; character?: unknown } | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    Number.isInteger(o.line) &&
    Number.isInteger(o.character)
  );
}

/** A well-formed, non-negative, ordered copy of an LSP range, or undefined. */
export function normalizeRange(r: unknown): LspRange | undefined {
  const o = r as { start?: unknown; end?: unknown } | null;
  if (typeof o !== 'object' || o === null || !isPos(o.start) || !isPos(o.end)) {
    return undefined;
  }
  const clamp = (n: number) => Math.max(0, n);
  let start = { line: clamp(o.start.line), character: clamp(o.start.character) };
  let end = { line: clamp(o.end.line), character: clamp(o.end.character) };
  if (end.line < start.line || (end.line === start.line && end.character < start.character)) {
    [start, end] = [end, start];
  }
  return { start, end };
}

/** 1-based first and last line covered by a range (an end at column 0 does not count its line). */
export function lineSpan(range: LspRange): { first: number; last: number } {
  const first = range.start.line + 1;
  let last = range.end.line + 1;
  if (range.end.character === 0 && range.end.line > range.start.line) {
    last -= 1;
  }
  return { first, last: Math.max(first, last) };
}

/** "path:12" or "path:12-30". */
export function formatLocation(path: string, range: LspRange, withEnd = false): string {
  const { first, last } = lineSpan(range);
  return withEnd && last !== first ? `${path}:${first}-${last}` : `${path}:${first}`;
}

/** Lines [first, last] (1-based, inclusive) of a text. */
export function sliceLines(text: string, first: number, last: number): string {
  const lines = text.split(/\r?\n/);
  return lines.slice(Math.max(0, first - 1), Math.max(0, last)).join('\n');
}
