// Reports an opened search result to the server (`needle.opened`); a failure is only written to the output
// log: recording feedback must never get in the way of opening code.
import { openedArguments, OPENED_COMMAND } from './lib/feedback';
import type { SearchResult } from './lib/types';
import type { NeedleService } from './service';

export function reportOpened(service: NeedleService, query: string, results: readonly SearchResult[], opened: SearchResult): void {
  const args = openedArguments(query, results, opened);
  if (!args) {
    return;
  }
  service.execute(OPENED_COMMAND, args).catch((err) => service.output.appendLine(`needle.opened failed: ${err instanceof Error ? err.message : String(err)}`));
}
