#!/usr/bin/env node
// End-to-end test of the Needle extension in a real VS Code (code-server 4.100.3 = VS Code 1.100.3),
// driven headless through Debian's chromium with puppeteer-core.
//
//   bash e2e/setup.sh          # once
//   npm run package            # builds needle.vsix
//   node e2e/run.mjs           # exit code 0 = pass; writes <repo>/.cache/e2e/screenshot.png
//
// Environment: NEEDLE_SERVER (default <repo>/.venv/bin/needle), NEEDLE_E2E_CACHE (code-server install),
// CHROMIUM (default /usr/bin/chromium), NEEDLE_E2E_KEEP=1 keeps the temp folder, NEEDLE_E2E_TIMEOUT (s, 300),
// NEEDLE_E2E_SCREENSHOT (default <repo>/.cache/e2e/screenshot.png: ignored by git, so a run leaves the tree clean).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXT_DIR = path.resolve(HERE, '..');
const REPO = path.resolve(EXT_DIR, '..', '..');
const CACHE = process.env.NEEDLE_E2E_CACHE || path.join(REPO, '.cache', 'code-server');
const CODE_SERVER = path.join(CACHE, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const VSIX = path.join(EXT_DIR, 'needle.vsix');
const NEEDLE = process.env.NEEDLE_SERVER || path.join(REPO, '.venv', 'bin', 'needle');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.NEEDLE_E2E_SCREENSHOT || path.join(REPO, '.cache', 'e2e', 'screenshot.png');
const TIMEOUT_S = Number(process.env.NEEDLE_E2E_TIMEOUT || 300);

const QUERY = 'parse a config file';
const EXPECT_NAME = 'parse_config_file';
const EXPECT_PATH = 'pkg/config.py';

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
const log = (...a) => console.log(`[e2e ${secs()}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
let csPid; // code-server's process group, killed on any exit
function killCodeServer(signal = 'SIGKILL') {
  if (csPid) {
    try {
      process.kill(-csPid, signal);
    } catch {}
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killCodeServer();
    process.exit(1);
  });
}
function check(cond, message) {
  if (!cond) throw new Failure(message);
  log(`ok: ${message}`);
}

/** Line (1-based) of the first line of `file` that contains `needle`. */
function lineOf(file, needle) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in ${file}`);
  return i + 1;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function readEvents(file) {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return {};
      }
    });
}

async function waitFor(what, fn, timeoutMs, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Failure(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(everyMs);
  }
}

function findFiles(dir, re, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) findFiles(p, re, out);
    else if (re.test(e.name)) out.push(p);
  }
  return out;
}

function tail(file, n = 40) {
  if (!fs.existsSync(file)) return '(missing)';
  return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
}

async function main(tmp) {
  for (const [what, p] of [
    ['code-server (run e2e/setup.sh)', CODE_SERVER],
    ['needle.vsix (run npm run package)', VSIX],
    ['the needle server (make setup, or set NEEDLE_SERVER)', NEEDLE],
    ['chromium (run e2e/setup.sh)', CHROMIUM],
  ]) {
    if (!fs.existsSync(p)) throw new Failure(`missing ${what}: ${p}`);
  }

  const dataDir = path.join(tmp, 'data');
  const extDir = path.join(tmp, 'extensions');
  const workspace = path.join(tmp, 'workspace');
  const eventsFile = path.join(tmp, 'events.jsonl');
  const serverLog = path.join(tmp, 'code-server.log');
  fs.cpSync(path.join(HERE, 'fixture'), workspace, { recursive: true });
  const expectLine = lineOf(path.join(workspace, EXPECT_PATH), `def ${EXPECT_NAME}`);

  // Settings: `needle.server.*` are machine-scoped, which a remote window (code-server) reads from
  // Machine/settings.json only; the rest goes to User/settings.json. Write both.
  const settings = {
    'security.workspace.trust.enabled': false,
    'needle.server.path': NEEDLE,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'telemetry.telemetryLevel': 'off',
    'chat.commandCenter.enabled': false,
    'git.enabled': false,
    'editor.minimap.enabled': false,
  };
  for (const sub of ['User', 'Machine']) {
    fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
    fs.writeFileSync(path.join(dataDir, sub, 'settings.json'), JSON.stringify(settings, null, 2));
  }

  const timings = {};
  let t = Date.now();
  const inst = spawnSync(
    process.execPath,
    [CODE_SERVER, '--install-extension', VSIX, '--user-data-dir', dataDir, '--extensions-dir', extDir],
    { encoding: 'utf8' },
  );
  check(inst.status === 0 && /successfully installed/i.test(inst.stdout + inst.stderr), 'vsix installs into code-server');
  timings.install = (Date.now() - t) / 1000;

  const port = await freePort();
  const env = {
    ...process.env,
    NEEDLE_E2E_LOG: eventsFile,
    NEEDLE_E2E_TOOL_QUERY: QUERY,
  };
  const out = fs.openSync(serverLog, 'w');
  t = Date.now();
  const cs = spawn(
    process.execPath,
    [
      CODE_SERVER,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', dataDir,
      '--extensions-dir', extDir,
      workspace,
    ],
    { env, stdio: ['ignore', out, out], detached: true },
  );
  csPid = cs.pid;
  let browser;
  const cleanup = async () => {
    try {
      await browser?.close();
    } catch {}
    killCodeServer('SIGTERM');
    await sleep(500);
    killCodeServer('SIGKILL');
  };
  let page;
  try {
    await waitFor('code-server /healthz', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 60_000);
    timings.codeServerUp = (Date.now() - t) / 1000;
    log(`code-server up on port ${port}`);

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      defaultViewport: { width: 1280, height: 800 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--window-size=1280,800',
      ],
    });
    page = await browser.newPage();
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
    t = Date.now();
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    timings.workbench = (Date.now() - t) / 1000;
    log('workbench loaded');

    const events = () => readEvents(eventsFile);
    const activated = await waitFor('the extension to activate', () => events().find((e) => e.event === 'activated'), 60_000);
    log(`extension activated in VS Code ${activated.vscode} (Copilot tool registered: ${activated.tool})`);
    t = Date.now();
    await waitFor('the index to be ready', () => {
      const evs = events();
      const failed = evs.find((e) => e.event === 'server-failed');
      if (failed) throw new Failure(`the server failed to start: ${failed.reason}`);
      return evs.find((e) => e.event === 'state' && e.phase === 'running' && e.index === 'ready');
    }, 180_000);
    timings.indexReady = (Date.now() - t) / 1000;
    check(events().some((e) => e.event === 'progress' && e.kind === 'begin'), '$/progress begin seen during indexing');
    // the status bar item exists and is out of its spinner
    const statusText = await page.evaluate(() => {
      const el = [...document.querySelectorAll('.statusbar-item')].find((x) => /Needle/.test(x.getAttribute('aria-label') || x.textContent || ''));
      return el ? el.getAttribute('aria-label') || el.textContent : null;
    });
    check(statusText !== null, `status bar item shown (${JSON.stringify(statusText)})`);

    // --- Needle: Search Code from the command palette -------------------------------------------
    t = Date.now();
    await page.click('.monaco-workbench .part.editor');
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) .quick-input-box input', { visible: true, timeout: 15_000 });
    await page.keyboard.type('Needle: Search Code', { delay: 20 });
    await waitFor('the command in the palette', () =>
      page.evaluate(() => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => /Needle: Search Code/.test(r.textContent))),
    15_000);
    await page.keyboard.press('Enter');
    await waitFor('the Needle search box', () =>
      page.evaluate(() => {
        const w = document.querySelector('.quick-input-widget');
        return !!w && w.style.display !== 'none' && /Needle: Search Code/.test(w.querySelector('.quick-input-title')?.textContent || '');
      }),
    15_000);
    await page.keyboard.type(QUERY, { delay: 30 });
    const rows = await waitFor('search results in the QuickPick', async () => {
      const r = await page.evaluate(() =>
        [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent),
      );
      return r.some((x) => x.includes('.py:') || x.includes('.js:') || /No matching|failed/.test(x)) ? r : null;
    }, 30_000);
    timings.search = (Date.now() - t) / 1000;
    log(`results:\n  ${rows.join('\n  ')}`);
    const searchEvent = events().filter((e) => e.event === 'search').pop();
    check(searchEvent && searchEvent.query === QUERY, `the extension searched for "${QUERY}" (${searchEvent?.count} results)`);
    const idx = rows.findIndex((r) => r.includes(EXPECT_NAME));
    check(idx >= 0, `${EXPECT_NAME} is listed (rank ${idx + 1})`);
    check(rows[idx].includes(`${EXPECT_PATH}:${expectLine}`), `its row shows ${EXPECT_PATH}:${expectLine}`);
    await sleep(300);
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    log(`screenshot: ${SCREENSHOT}`);

    // --- accept: the file opens at the function --------------------------------------------------
    for (let i = 0; i < idx; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    const opened = await waitFor('the result to open', () => events().find((e) => e.event === 'open'), 15_000);
    check(opened.path === EXPECT_PATH && opened.line === expectLine, `opened ${opened.path}:${opened.line}`);
    check(opened.cursorLine === expectLine && (opened.activeUri || '').endsWith(EXPECT_PATH), `active editor cursor on line ${opened.cursorLine}`);
    const ui = await waitFor('the editor tab and cursor position', async () => {
      const v = await page.evaluate(() => ({
        tab: document.querySelector('.tabs-container .tab.active')?.getAttribute('aria-label') || document.querySelector('.tab.active')?.textContent || '',
        cursor: document.querySelector('#status\\.editor\\.selection')?.textContent || '',
      }));
      return v.tab.includes('config.py') && v.cursor.includes(`Ln ${expectLine},`) ? v : null;
    }, 10_000);
    check(true, `UI shows tab "${ui.tab.split(',')[0]}" and "${ui.cursor.trim()}"`);
    await page.screenshot({ path: path.join(tmp, 'opened.png') });

    // --- Copilot tool, called through vscode.lm.invokeTool by the extension ---------------------
    const tool = await waitFor('the needle_search tool result', () => events().find((e) => e.event === 'tool'), 20_000);
    check(tool.listed, 'needle_search is listed in vscode.lm.tools');
    check(!tool.error && tool.text.includes(EXPECT_PATH) && tool.text.includes(`def ${EXPECT_NAME}`), 'needle_search returns the path and code');

    // --- workspace/symbol: VS Code's own "Go to Symbol in Workspace" goes through Needle ---------
    t = Date.now();
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget .quick-input-box input', { visible: true, timeout: 15_000 });
    await page.keyboard.press('Backspace'); // drop the ">" of the command palette
    // VS Code fuzzy-filters workspace symbols by name (and reads "a b" as container + symbol), so a
    // sentence would be dropped client-side: query an identifier fragment, Needle still ranks.
    await page.keyboard.type('#parse_config', { delay: 20 });
    const symbols = await waitFor('workspace symbols', async () => {
      const r = await page.evaluate(() =>
        [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent),
      );
      return r.some((x) => x.includes(EXPECT_NAME)) ? r : null;
    }, 20_000).catch((e) => { throw new Failure(`${e.message}: ${EXPECT_NAME} not among the workspace symbols`); });
    check(symbols.some((x) => x.includes(EXPECT_NAME)), `workspace/symbol lists ${EXPECT_NAME} (${symbols.length} symbols)`);
    await page.keyboard.press('Escape');
    timings.workspaceSymbol = (Date.now() - t) / 1000;

    // --- a bad server path: the extension restarts on the settings change and explains ----------
    t = Date.now();
    const bad = { ...settings, 'needle.server.path': path.join(tmp, 'no-such-needle') };
    fs.writeFileSync(path.join(dataDir, 'Machine', 'settings.json'), JSON.stringify(bad, null, 2));
    const failed = await waitFor('the bad server path to be reported', () => events().find((e) => e.event === 'server-failed'), 30_000);
    check(/does not exist/.test(failed.reason), `bad needle.server.path reported: ${failed.reason}`);
    const toast = await waitFor('the error notification', () =>
      page.evaluate(() => {
        const t = [...document.querySelectorAll('.notification-toast')].find((x) => /could not start/.test(x.textContent));
        return t ? { text: t.textContent, buttons: [...t.querySelectorAll('.monaco-button')].map((b) => b.textContent) } : null;
      }),
    15_000);
    check(['Open Settings', 'Show Log'].every((b) => toast.buttons.includes(b)), `error notification offers ${toast.buttons.join(', ')}`);
    await page.screenshot({ path: path.join(tmp, 'bad-path.png') });
    timings.badPath = (Date.now() - t) / 1000;

    log(`PASS in ${secs()}s; timings (s): ${JSON.stringify(timings)}`);
    if (process.env.NEEDLE_E2E_KEEP) log(`kept ${tmp}`);
    return 0;
  } catch (err) {
    console.error(`[e2e ${secs()}s] FAIL: ${err instanceof Failure ? err.message : err?.stack || err}`);
    if (page) {
      try {
        await page.screenshot({ path: path.join(tmp, 'failure.png') });
        console.error(`failure screenshot: ${path.join(tmp, 'failure.png')}`);
      } catch {}
    }
    console.error(`--- events ---\n${tail(eventsFile)}`);
    console.error(`--- code-server log ---\n${tail(serverLog, 30)}`);
    for (const f of findFiles(dataDir, /Needle\.log$/)) console.error(`--- ${f} ---\n${tail(f, 60)}`);
    console.error(`temp folder kept: ${tmp}`);
    return 1;
  } finally {
    await cleanup();
  }
}

const watchdog = setTimeout(() => {
  console.error(`[e2e] FAIL: overall timeout of ${TIMEOUT_S}s`);
  killCodeServer();
  process.exit(1);
}, TIMEOUT_S * 1000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'needle-e2e-'));
const code = await main(tmp).catch((err) => {
  console.error(`[e2e] FAIL: ${err instanceof Failure ? err.message : err?.stack || err}`);
  return 1;
});
clearTimeout(watchdog);
if (code === 0 && !process.env.NEEDLE_E2E_KEEP) {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
