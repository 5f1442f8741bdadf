// `needle.opened`: tell the server which result the user opened for a query, and which were listed above it.
// The server appends it to a local log in the index folder (opt-out: the `needle.feedback` setting);
// `needle train --repo` learns from it. No `vscode` import: unit-tested with node's test runner.
import type { SearchResult } from './types';

export const OPENED_COMMAND = 'needle.opened';
const MAX_ABOVE = 20;

export interface OpenedArgument {
  query: string;
  uri: string;
  line: number;
  name?: string;
  above: { uri: string; line: number }[];
}

/** The `arguments` of `needle.opened` for `opened` picked from `results`, or undefined when there is no query
 * or the result is not in the list (nothing worth recording). */
export function openedArguments(query: string, results: readonly SearchResult[], opened: SearchResult): [OpenedArgument] | undefined {
  const q = query.trim();
  const index = results.indexOf(opened);
  if (!q || index < 0) {
    return undefined;
  }
  const above = results.slice(Math.max(0, index - MAX_ABOVE), index).map((r) => ({ uri: r.uri, line: r.range.start.line }));
  const arg: OpenedArgument = { query: q, uri: opened.uri, line: opened.range.start.line, above };
  if (opened.name) {
    arg.name = opened.name;
  }
  return [arg];
}
