// When NEEDLE_E2E_LOG names a file, the extension appends one JSON line per notable event to it.
// The end-to-end test (e2e/run.mjs) reads it; users never set it.
import * as fs from 'fs';

const target = process.env.NEEDLE_E2E_LOG;

export function e2eEnabled(): boolean {
  return !!target;
}

export function e2eLog(event: string, data: Record<string, unknown> = {}): void {
  if (!target) {
    return;
  }
  try {
    fs.appendFileSync(target, `${JSON.stringify({ t: Date.now(), event, ...data })}\n`);
  } catch {
    // never let test logging break the extension
  }
}
