// Debounce for search-as-you-type, and a sequencer that drops stale answers.

export interface Debounced<A extends unknown[]> {
  /** Schedule a call; a later call within `ms` replaces it. */
  call(...args: A): void;
  /** Drop the pending call, if any. */
  cancel(): void;
  /** Run the pending call now, if any. */
  flush(): void;
  readonly pending: boolean;
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): Debounced<A> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastArgs: A | undefined;
  const run = () => {
    timer = undefined;
    const args = lastArgs;
    lastArgs = undefined;
    if (args) {
      fn(...args);
    }
  };
  return {
    call(...args: A) {
      lastArgs = args;
      if (timer !== undefined) {
        clearTimeout(timer);
      }
      if (ms <= 0) {
        run();
        return;
      }
      timer = setTimeout(run, ms);
    },
    cancel() {
      if (timer !== undefined) {
        clearTimeout(timer);
      }
      timer = undefined;
      lastArgs = undefined;
    },
    flush() {
      if (timer !== undefined) {
        clearTimeout(timer);
        run();
      }
    },
    get pending() {
      return timer !== undefined;
    },
  };
}

/** Numbers requests so that only the answer to the latest one is used. */
export class Sequencer {
  private current = 0;
  next(): number {
    this.current += 1;
    return this.current;
  }
  isLatest(id: number): boolean {
    return id === this.current;
  }
  /** Invalidate every request issued so far. */
  invalidate(): void {
    this.current += 1;
  }
}

/**
 * What Enter does in a search-as-you-type picker: `search` the typed text now (it was still waiting for the
 * debounce), `wait` (a search for it is running: the list still shows an older query's results, which must not
 * open), or `open` the active result. `shownFor`: the text whose results the list shows.
 */
export function acceptAction(pending: boolean, searching: boolean, typed: string, shownFor: string | undefined): 'search' | 'wait' | 'open' {
  if (pending) {
    return 'search';
  }
  return searching && typed !== shownFor ? 'wait' : 'open';
}
