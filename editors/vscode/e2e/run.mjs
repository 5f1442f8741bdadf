#!/usr/bin/env node
// End-to-end test of the Needle extension in a real VS Code (code-server 4.100.3 = VS Code 1.100.3),
// driven headless through Debian's chromium with puppeteer-core. What the user sees is read from the UI (DOM)
// and from e2e/probe, a test-only extension installed beside needle.vsix that logs the active editor,
// cursor and selection, the server's status and a Copilot-style tool call (the shipped extension has no
// test hooks). Besides search, preview, open, the Copilot tool, Go to Symbol, Find Similar Code, and a result in a
// Jupyter notebook (opened in the notebook editor at its cell) with Find Similar Code from that cell, Escape after a
// preview (the previewed tab closes), it drives the
// server's life cycle (equal settings, crash, crash loop, a start that hangs, a command that exits, a bad path,
// Open Settings) and, in a second code-server with workspace trust on, Restricted Mode (what each channel sends
// the server) and a window without a folder. About 75 s.
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
const PROBE_DIR = path.join(HERE, 'probe');
const VSCE = path.join(EXT_DIR, 'node_modules', '@vscode', 'vsce', 'vsce');
const NEEDLE = process.env.NEEDLE_SERVER || path.join(REPO, '.venv', 'bin', 'needle');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.NEEDLE_E2E_SCREENSHOT || path.join(REPO, '.cache', 'e2e', 'screenshot.png');
const TIMEOUT_S = Number(process.env.NEEDLE_E2E_TIMEOUT || 300);

const QUERY = 'parse a config file';
const EXPECT_NAME = 'parse_config_file';
const EXPECT_PATH = 'pkg/config.py';
const MAX_RESULTS = 3; // the fixture has 27 chunks: the server's own default (10) would show more
// A function in the second cell of a Jupyter notebook, at lines 5-7 of that cell.
const NB_QUERY = 'read the monthly sales csv into a data frame';
const NB_NAME = 'load_sales';
const NB_PATH = 'nb/sales.ipynb';

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
const log = (...a) => console.log(`[e2e ${secs()}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
const csPids = []; // code-server process groups (one per session), killed on any exit
function killCodeServer(signal = 'SIGKILL') {
  for (const pid of csPids) {
    try {
      process.kill(-pid, signal);
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

/**
 * Processes of this run's language servers: every server command gets NEEDLE_E2E_MARK=<this run's temp folder> in
 * its environment (needle.server.env), so they are told apart from any other process on the machine.
 */
function markedProcesses(mark) {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (!env.includes(`NEEDLE_E2E_MARK=${mark}`)) continue;
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (state !== 'Z') out.push({ pid: Number(pid), cmd });
    } catch {}
  }
  return out;
}

function tail(file, n = 40) {
  if (!fs.existsSync(file)) return '(missing)';
  return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
}

/**
 * A second code-server with workspace trust on: the folder opens in Restricted Mode, and its
 * .vscode/settings.json tries to make the server index (and write into) folders outside it and to change the
 * server's command and environment. The server command records everything the extension sends it (tee), so
 * each channel is checked: initializationOptions, workspace/configuration answers, didChangeConfiguration.
 * Then a window without a folder: the server must not start there.
 */
/** Wait until the code-server on `port` answers /healthz. */
function untilHealthy(what, port) {
  return waitFor(what, async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 60_000);
}

/**
 * Run a command from the palette by its title: F1 over the editor, the title typed, Enter once it is listed.
 * `focus: false` leaves the focus (and the cursor) where it is: a command about the code under the cursor.
 */
async function runFromPalette(page, title, { focus = true } = {}) {
  if (focus) await page.click('.monaco-workbench .part.editor');
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) .quick-input-box input', { visible: true, timeout: 15_000 });
  await page.keyboard.type(title, { delay: 20 });
  await waitFor(`${title} in the palette`, () =>
    page.evaluate((t) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.textContent.includes(t)), title),
  15_000);
  await page.keyboard.press('Enter');
}

/** Another code-server window on `ws` (its own user data, the same extensions), healthy; its process group is killed on exit. */
async function launchCodeServer(tmp, name, dataDir, extDir, ws, env) {
  const port = await freePort();
  const out = fs.openSync(path.join(tmp, `code-server-${name}.log`), 'w');
  const cs = spawn(process.execPath, [CODE_SERVER, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry',
    '--disable-update-check', '--disable-getting-started-override', '--user-data-dir', dataDir, '--extensions-dir', extDir, ws],
  { env: { ...process.env, ...env }, stdio: ['ignore', out, out], detached: true });
  csPids.push(cs.pid);
  return { cs, port };
}

async function restrictedSession(browser, tmp, extDir, baseSettings) {
  const dataDir = path.join(tmp, 'data-restricted');
  const ws = path.join(tmp, 'untrusted');
  const eventsFile = path.join(tmp, 'events-restricted.jsonl');
  const secret = path.join(tmp, 'secret');
  const secret2 = path.join(tmp, 'secret-two');
  for (const d of [secret, secret2]) {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'keys.py'), 'def private_key():\n    return "not for the index"\n');
  }
  fs.cpSync(path.join(HERE, 'fixture'), ws, { recursive: true });
  fs.writeFileSync(path.join(secret, 'evil.sh'), `#!/bin/sh\ntouch ${secret}/evil-ran\nexit 1\n`, { mode: 0o755 });
  const wsSettings = (extra) => {
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({
      'needle.extraRoots': [secret],
      'needle.indexDir': path.join(secret, 'idx'),
      'needle.server.path': path.join(secret, 'evil.sh'),
      'needle.server.env': { PYTHONPATH: secret, NEEDLE_E2E_EVIL: '1' },
      'needle.search.maxResults': 4,
      ...extra,
    }, null, 2));
  };
  wsSettings({});
  const traffic = path.join(tmp, 'traffic.jsonrpc');
  const recorder = path.join(tmp, 'record.sh');
  fs.writeFileSync(recorder, `#!/bin/bash\nexec "${NEEDLE}" "$@" < <(tee -a "${traffic}")\n`, { mode: 0o755 });
  const settings = {
    ...baseSettings,
    'security.workspace.trust.enabled': true,
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.banner': 'never',
    'needle.server.path': recorder,
  };
  for (const sub of ['User', 'Machine']) {
    fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
    fs.writeFileSync(path.join(dataDir, sub, 'settings.json'), JSON.stringify(settings, null, 2));
  }
  const { cs, port } = await launchCodeServer(tmp, 'restricted', dataDir, extDir, ws, { NEEDLE_E2E_LOG: eventsFile });
  const pages = [];
  try {
    await untilHealthy('the second code-server', port);
    const events = () => readEvents(eventsFile);
    const page = await browser.newPage();
    pages.push(page);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const act = await waitFor('the probe in the untrusted window', () => events().find((e) => e.event === 'activated'), 60_000);
    check(act.trusted === false, 'the second window is in Restricted Mode (workspace not trusted)');
    const ready = await waitFor('the index of the untrusted folder', () => events().find((e) => e.event === 'status' && e.state === 'ready'), 60_000);
    check(JSON.stringify(ready.roots) === JSON.stringify([ws]), `only the workspace folder is indexed (${JSON.stringify(ready.roots)})`);
    // A change of the workspace's settings: pushed to the server (didChangeConfiguration), filtered too.
    wsSettings({ 'needle.extraRoots': [secret, secret2], 'needle.search.maxResults': 2 });
    await waitFor('the settings push', () => {
      const text = fs.existsSync(traffic) ? fs.readFileSync(traffic, 'utf8') : '';
      return /"workspace\/didChangeConfiguration".*"maxResults":2/.test(text);
    }, 15_000);
    await sleep(2000); // time for a server that was told to index the folders to start writing there
    const text = fs.readFileSync(traffic, 'utf8');
    check(/"method":"initialize".*"initializationOptions"/.test(text), 'the traffic holds the initialize request');
    const messages = text.split(/Content-Length: \d+\r\n\r\n/);
    check(messages.some((m) => m.startsWith('{"jsonrpc":"2.0","id":') && m.includes('"result":[{') && m.includes('"maxResults":4')),
      'and the answers to workspace/configuration (with the harmless workspace value)');
    check(!text.includes(secret) && !text.includes(secret2) && !text.includes('NEEDLE_E2E_EVIL'),
      'no channel sends the untrusted workspace\'s extraRoots, indexDir or server settings to the server');
    check(!fs.existsSync(path.join(secret, '.needle')) && !fs.existsSync(path.join(secret2, '.needle'))
      && !fs.existsSync(path.join(secret, 'idx')) && !fs.existsSync(path.join(secret, 'evil-ran')),
    'nothing was written into the folders the workspace named, and its server.path never ran');
    const initializes = (text.match(/"method":"initialize"/g) || []).length;

    // A window without a folder: no server, no warning meant for Neovim; the status bar says to open a folder.
    const empty = await browser.newPage();
    pages.push(empty);
    await empty.goto(`http://127.0.0.1:${port}/?ew=true`, { waitUntil: 'domcontentloaded' });
    await empty.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await waitFor('the probe in the empty window', () => events().find((e) => e.event === 'activated' && e.folders === 0), 60_000);
    await sleep(3000);
    const view = await empty.evaluate(() => ({
      toasts: [...document.querySelectorAll('.notification-toast')].map((x) => x.textContent),
      needle: [...document.querySelectorAll('.statusbar-item')].filter((x) => /Needle/.test(x.getAttribute('aria-label') || x.textContent))
        .map((x) => x.innerHTML),
    }));
    const after = (fs.readFileSync(traffic, 'utf8').match(/"method":"initialize"/g) || []).length;
    check(after === initializes, `a window without a folder starts no server (initialize requests: ${initializes} before, ${after} after)`);
    check(!view.toasts.some((x) => /workspace folder|Neovim|root_markers/.test(x)), `and shows no warning (${JSON.stringify(view.toasts)})`);
    check(view.needle.length === 1 && /circle-slash/.test(view.needle[0]), 'its status bar item says no folder is open');
  } finally {
    for (const p of pages) {
      try {
        await p.close();
      } catch {}
    }
    try {
      process.kill(-cs.pid, 'SIGKILL');
    } catch {}
  }
}

/** A window on a big folder (3,000 files): Needle: Cancel Indexing stops its first index, which is then partial. */
async function cancelSession(browser, tmp, extDir, baseSettings) {
  const dataDir = path.join(tmp, 'data-cancel');
  const ws = path.join(tmp, 'big');
  const eventsFile = path.join(tmp, 'events-cancel.jsonl');
  fs.mkdirSync(path.join(ws, '.git'), { recursive: true }); // a repository root, as a clone has
  // Tens of seconds of embedding on 2 cores (3.4 s for 800 one-line functions was too quick to cancel).
  for (let i = 0; i < 3000; i += 1) {
    fs.writeFileSync(path.join(ws, `mod_${i}.py`), `def function_${i}(items, limit=${i}):\n    """Keep the items of batch ${i} under the limit, counting what was dropped."""\n`
      + `    kept, dropped = [], 0\n    for item in items:\n        if item.size <= limit:\n            kept.append(item)\n        else:\n            dropped += 1\n`
      + `    return kept, dropped  # zebrafish ${i}\n`);
  }
  for (const sub of ['User', 'Machine']) {
    fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
    fs.writeFileSync(path.join(dataDir, sub, 'settings.json'), JSON.stringify(baseSettings, null, 2));
  }
  // Without the machine's shared embedding cache: vectors of an earlier run would finish the index before the cancel.
  const { cs, port } = await launchCodeServer(tmp, 'cancel', dataDir, extDir, ws,
    { NEEDLE_E2E_LOG: eventsFile, NEEDLE_EMBEDDING_CACHE: 'off' });
  let page;
  try {
    await untilHealthy('the third code-server', port);
    const events = () => readEvents(eventsFile);
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await waitFor('the big folder to be indexing', () => events().find((e) => e.event === 'status' && e.state === 'indexing'), 60_000);
    await runFromPalette(page, 'Needle: Cancel Indexing');
    const after = await waitFor('the indexing to stop', () =>
      events().find((e) => e.event === 'status' && (e.state === 'partial' || e.state === 'ready')), 60_000);
    check(after.state === 'partial', `Needle: Cancel Indexing stopped the first index of 3,000 files: the folder is ${after.state}`);
  } finally {
    try {
      await page?.close();
    } catch {}
    try {
      process.kill(-cs.pid, 'SIGKILL');
    } catch {}
  }
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
  // A workspace setting: Search Code and Find Similar Code show this many results.
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'needle.search.maxResults': MAX_RESULTS }));
  const expectLine = lineOf(path.join(workspace, EXPECT_PATH), `def ${EXPECT_NAME}`);

  // Settings: `needle.server.*` are machine-scoped, which a remote window (code-server) reads from
  // Machine/settings.json only; the rest goes to User/settings.json. Write both.
  const settings = {
    'security.workspace.trust.enabled': false,
    'needle.server.path': NEEDLE,
    // The machine's shared vectors would let a second run reuse the first one's: its index would be ready before
    // the status bar could be seen counting chunks.
    'needle.server.env': { NEEDLE_E2E_MARK: tmp, NEEDLE_EMBEDDING_CACHE: 'off' },
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
  const probeVsix = path.join(tmp, 'probe.vsix');
  const pack = spawnSync(process.execPath, [VSCE, 'package', '--no-dependencies', '--allow-missing-repository',
    '--skip-license', '--out', probeVsix], { cwd: PROBE_DIR, encoding: 'utf8' });
  check(pack.status === 0, `test probe packaged${pack.status === 0 ? '' : `: ${pack.stderr}`}`);
  const probe = spawnSync(
    process.execPath,
    [CODE_SERVER, '--install-extension', probeVsix, '--user-data-dir', dataDir, '--extensions-dir', extDir],
    { encoding: 'utf8' },
  );
  check(probe.status === 0, 'test probe installs beside it');
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
  csPids.push(cs.pid);
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
    await untilHealthy('code-server /healthz', port);
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
    const activated = await waitFor('the probe to activate', () => events().find((e) => e.event === 'activated'), 60_000);
    log(`probe activated in VS Code ${activated.vscode} (remoteName ${activated.remoteName}, trusted ${activated.trusted})`);
    t = Date.now();
    const needleItems = () =>
      page.evaluate(() =>
        [...document.querySelectorAll('.statusbar-item')]
          .map((x) => x.getAttribute('aria-label') || x.textContent || '')
          .filter((s) => /Needle/.test(s)),
      );
    // Sampled in the background from the start: Needle must show one item, never a second progress item.
    const seen = [];
    const sampler = setInterval(() => void needleItems().then((items) => seen.push(items), () => undefined), 100);
    const openSearch = async () => {
      await runFromPalette(page, 'Needle: Search Code');
      await waitFor('the Needle search box', () =>
        page.evaluate(() => {
          const w = document.querySelector('.quick-input-widget');
          return !!w && w.style.display !== 'none' && /Needle: Search Code/.test(w.querySelector('.quick-input-title')?.textContent || '');
        }),
      15_000);
    };
    const resultRows = () =>
      page.evaluate(() => [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent));
    // The rows once one of them matches `pattern`.
    const rowsWith = (what, pattern, ms) => waitFor(what, async () => {
      const r = await resultRows();
      return r.some((x) => pattern.test(x)) ? r : null;
    }, ms);
    const ANSWERED = /\.(py|js):\d+|No matching|failed/;
    const rowPaths = (rows) => rows.map((r) => /((?:pkg|web|nb)\/[\w./-]+):\d+/.exec(r)?.[1]).filter(Boolean);
    // Escape, and wait for the preview tab the first row opened (inventory.py) to close with the picker.
    const escapePreview = async () => {
      await page.keyboard.press('Escape');
      await waitFor('the preview tab to close', async () => !(await quickOpen()) && !(await page.evaluate(() =>
        [...document.querySelectorAll('.tabs-container .tab')].some((x) => /inventory\.py/.test(x.getAttribute('aria-label') || '')))), 10_000);
      await sleep(500);
    };

    // --- a search during the first index says so (not "no matching code") -----------------------
    await waitFor('needle.status to report indexing', () => events().find((e) => e.event === 'status' && e.state === 'indexing'), 60_000);
    await openSearch();
    await page.keyboard.type('zzqx blorf', { delay: 10 });
    const early = await waitFor('an answer during indexing', async () => {
      const r = await resultRows();
      return r.find((x) => /Still indexing|No good match|No matching code/.test(x));
    }, 30_000);
    check(!/No matching code/.test(early), `a search during the first index answers ${JSON.stringify(early.slice(0, 120))}`);
    log(/Still indexing/.test(early) ? 'the index was still building: "Still indexing" shown'
      : 'the index finished before the answer: "No good match" shown');
    await page.keyboard.press('Escape');

    await waitFor('the index to be ready', async () => {
      const toast = await page.evaluate(() =>
        [...document.querySelectorAll('.notification-toast')].map((x) => x.textContent).find((s) => /could not start/.test(s)));
      if (toast) throw new Failure(`the server failed to start: ${toast}`);
      return events().find((e) => e.event === 'status' && e.state === 'ready');
    }, 180_000);
    timings.indexReady = (Date.now() - t) / 1000;
    clearInterval(sampler);
    check(events().some((e) => e.event === 'status' && e.state === 'indexing'), 'needle.status reported indexing before ready');
    const most = Math.max(...seen.map((s) => s.length));
    check(most === 1, `one Needle status bar item while indexing (most seen at once: ${most}; texts: ${JSON.stringify([...new Set(seen.flat())].slice(0, 6))})`);
    // The count shows in the item's text (from needle.status) or its tooltip (from $/progress), whichever came first.
    check(seen.flat().some((s) => /Needle [\d,]+ chunks?|embedding [\d,]+\/[\d,]+ chunks/.test(s)), 'the status bar counted chunks while indexing');
    const statusText = (await needleItems())[0];
    check(statusText !== undefined, `status bar item shown (${JSON.stringify(statusText)})`);

    // --- Needle: Search Code from the command palette -------------------------------------------
    t = Date.now();
    await openSearch();
    const typed = Date.now();
    await page.keyboard.type(QUERY, { delay: 30 });
    const rows = await waitFor('search results in the QuickPick', async () => {
      const r = await page.evaluate(() =>
        [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent),
      );
      return r.some((x) => x.includes('.py:') || x.includes('.js:') || /No matching|failed/.test(x)) ? r : null;
    }, 30_000);
    timings.search = (Date.now() - t) / 1000;
    log(`results:\n  ${rows.join('\n  ')}`);
    const idx = rows.findIndex((r) => r.includes(EXPECT_NAME));
    check(idx >= 0, `${EXPECT_NAME} is listed (rank ${idx + 1})`);
    check(rows[idx].includes(`${EXPECT_PATH}:${expectLine}`), `its row shows ${EXPECT_PATH}:${expectLine}`);
    await sleep(300);
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    log(`screenshot: ${SCREENSHOT}`);

    // --- preview: arrowing through results shows each one's code, the picker stays open ----------
    const located = rows.map((r) => /((?:pkg|web)\/[\w./-]+\.(?:py|js)):(\d+)/.exec(r)).map((m) => (m ? { path: m[1], line: Number(m[2]) } : null));
    const quickOpen = () => page.evaluate(() => {
      const w = document.querySelector('.quick-input-widget');
      return !!w && w.style.display !== 'none';
    });
    // A preview puts the cursor on the result's name: at or a little below its first line, which is in view.
    const previewOf = (row, after) =>
      waitFor(`a preview of ${row.path}:${row.line}`, () =>
        events().find((e) => e.t > after && e.event === 'selection' && (e.uri || '').endsWith(row.path)
          && e.line >= row.line && e.line <= row.line + 30 && e.visible.some(([a, b]) => a <= row.line && row.line <= b)), 10_000);
    let since = typed;
    let at = 0;
    const firstResult = located.findIndex(Boolean);
    check(firstResult >= 0, 'rows carry path:line');
    // the first two rows with a file and line (a notebook's row between them is skipped over)
    const steps = located.map((l, i) => (l ? i : -1)).filter((i) => i >= 0).slice(0, 2);
    for (const i of steps) {
      while (at < i) {
        since = Date.now();
        await page.keyboard.press('ArrowDown');
        at += 1;
      }
      const shown = await previewOf(located[i], since);
      check(await quickOpen(), `arrowing to row ${i + 1} previews ${located[i].path} (line ${located[i].line} in view, cursor line ${shown.line}) with the picker still open`);
    }

    // --- accept: the file opens with the cursor on the function's name, nothing selected ------------
    const back = Date.now();
    const moved = at !== idx;
    while (at < idx) {
      await page.keyboard.press('ArrowDown');
      at += 1;
    }
    while (at > idx) {
      await page.keyboard.press('ArrowUp');
      at -= 1;
    }
    if (moved) {
      await previewOf(located[idx], back); // Enter on the row whose preview shows, as a user presses it
    }
    await page.keyboard.press('Enter');
    const defLine = fs.readFileSync(path.join(workspace, EXPECT_PATH), 'utf8').split('\n')[expectLine - 1];
    const nameColumn = defLine.indexOf(EXPECT_NAME);
    await waitFor('the picker to close', async () => !(await quickOpen()), 15_000);
    await sleep(700); // let the editor settle: the last selection event is what the user is left with
    // Where the user is left: the last selection in the file. Accepting a row whose preview already put the cursor
    // on the name changes no selection, so that preview's event may be the last one.
    const opened = await waitFor('the result to open', () =>
      events().filter((e) => e.t >= typed && e.event === 'selection' && (e.uri || '').endsWith(EXPECT_PATH)).pop(), 15_000);
    check(opened.line === expectLine && opened.character === nameColumn, `cursor on the name: ${EXPECT_PATH}:${opened.line}:${opened.character + 1}`);
    check(opened.empty, 'nothing is selected (typing cannot replace the function)');
    const ui = await waitFor('the editor tab and cursor position', async () => {
      const v = await page.evaluate(() => ({
        tab: document.querySelector('.tabs-container .tab.active')?.getAttribute('aria-label') || document.querySelector('.tab.active')?.textContent || '',
        cursor: document.querySelector('#status\\.editor\\.selection')?.textContent || '',
      }));
      return v.tab.includes('config.py') && v.cursor.includes(`Ln ${expectLine}, Col ${nameColumn + 1}`) ? v : null;
    }, 10_000);
    check(!/selected/.test(ui.cursor), `UI shows tab "${ui.tab.split(',')[0]}" and "${ui.cursor.trim()}"`);
    await page.screenshot({ path: path.join(tmp, 'opened.png') });

    // --- Copilot tool, called through vscode.lm.invokeTool (by the test probe) -------------------
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

    // --- Find Similar Code on unsaved edits: the editor's text is sent, its function is left out ----
    t = Date.now();
    await page.click('.monaco-workbench .part.editor .monaco-editor .view-lines');
    await page.keyboard.down('Control');
    await page.keyboard.press('Home');
    await page.keyboard.up('Control');
    for (let i = 1; i < expectLine; i += 1) await page.keyboard.press('ArrowDown');
    await page.keyboard.type('# an unsaved line\n', { delay: 10 }); // the function now starts a line lower
    await waitFor('the edit to show', () => page.evaluate(() => /an\sunsaved\sline/.test(document.querySelector('.monaco-editor .view-lines')?.textContent || '')), 5_000);
    await runFromPalette(page, 'Needle: Find Similar Code', { focus: false });
    const similar = await waitFor('similar code in the QuickPick', async () => {
      const v = await page.evaluate(() => ({
        title: document.querySelector('.quick-input-widget .quick-input-title')?.textContent || '',
        rows: [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent),
      }));
      return /Code Similar to/.test(v.title) && v.rows.some((x) => /\.(py|js):\d+|No similar|failed/.test(x)) ? v : null;
    }, 30_000);
    log(`similar to the unsaved function (${similar.title}):\n  ${similar.rows.join('\n  ')}`);
    check(similar.title.includes(`${EXPECT_PATH}:${expectLine + 1}`), `Find Similar Code on a dirty document answers for ${EXPECT_PATH}:${expectLine + 1}`);
    check(similar.rows.some((x) => /\.(py|js):\d+/.test(x)) && !similar.rows.some((x) => x.includes(EXPECT_NAME)),
      `it lists similar code, ${EXPECT_NAME} itself (its saved version) left out`);
    check(similar.rows.length <= MAX_RESULTS, `Find Similar Code shows needle.search.maxResults (${MAX_RESULTS}) results at most (${similar.rows.length})`);
    await page.keyboard.press('Escape');
    timings.similarUnsaved = (Date.now() - t) / 1000;

    // --- Search in Folder from the palette: the active file's folder (pkg/) only -----------------------
    t = Date.now();
    await waitFor('the quick input to close', async () => !(await quickOpen()), 5_000);
    // The picker just closed (and its preview with it): F1 can land while focus still moves, so wait until the
    // palette's own input has the focus before typing, and press again if it never came.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await sleep(500);
      await page.click('.monaco-workbench .part.editor');
      await page.keyboard.press('F1');
      const focused = await waitFor('the command palette to take the keyboard', () => page.evaluate(() => {
        const w = document.querySelector('.quick-input-widget');
        const input = w && w.style.display !== 'none' ? w.querySelector('.quick-input-box input') : null;
        return !!input && input.value.startsWith('>') && document.activeElement === input;
      }), 5_000).catch(() => false);
      if (focused) break;
      await page.keyboard.press('Escape');
    }
    await page.keyboard.type('Needle: Search in Folder', { delay: 20 });
    await waitFor('Search in Folder in the palette', () =>
      page.evaluate(() => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => /Needle: Search in Folder/.test(r.textContent))),
    15_000);
    await page.keyboard.press('Enter');
    await waitFor('the search box titled with the folder', () =>
      page.evaluate(() => /Needle: Search in pkg/.test(document.querySelector('.quick-input-widget .quick-input-title')?.textContent || '')),
    15_000);
    await page.keyboard.type('sum the cart total with discount and tax', { delay: 10 }); // web/cart.js, outside pkg/
    const inFolder = await rowsWith('results from the folder', ANSWERED, 30_000);
    log(`in pkg/:\n  ${inFolder.join('\n  ')}`);
    const paths = rowPaths(inFolder);
    check(paths.length > 0 && paths.every((p) => p.startsWith('pkg/')), `Search in Folder answers from pkg/ only (${[...new Set(paths)].join(', ')})`);
    await escapePreview(); // settled before the next step opens the palette
    timings.searchInFolder = (Date.now() - t) / 1000;

    // --- in:PATH typed in Search Code narrows the same way; a path that names nothing says so -----------
    t = Date.now();
    await waitFor('the quick input to close', async () => !(await quickOpen()), 5_000);
    await openSearch();
    await page.keyboard.type('in:pkg sum the cart total with discount and tax', { delay: 10 });
    const typedIn = await rowsWith('results from in:pkg', ANSWERED, 30_000);
    log(`in:pkg:\n  ${typedIn.join('\n  ')}`);
    const typedPaths = rowPaths(typedIn);
    check(typedPaths.length > 0 && typedPaths.every((p) => p.startsWith('pkg/')), `in:pkg answers from pkg/ only (${[...new Set(typedPaths)].join(', ')})`);
    await escapePreview();
    await openSearch();
    await page.keyboard.type('in:nowhere sum the cart', { delay: 10 });
    const noWhere = await rowsWith('the no-such-folder row', /No such folder or file/, 15_000);
    check(noWhere.some((x) => /in:nowhere names nothing in the workspace/.test(x)), `in:nowhere says it names nothing: ${noWhere[0]}`);
    await escapePreview();
    timings.typedIn = (Date.now() - t) / 1000;

    // --- a result in a Jupyter notebook opens the notebook at its cell, not the .ipynb's JSON ----------
    t = Date.now();
    await waitFor('the quick input to close', async () => !(await quickOpen()), 5_000);
    await openSearch();
    await page.keyboard.type(NB_QUERY, { delay: 10 });
    const nbRows = await waitFor('the notebook result', async () => {
      const r = await resultRows();
      return r.some((x) => x.includes(NB_NAME)) ? r : null;
    }, 30_000);
    log(`notebook results:\n  ${nbRows.join('\n  ')}`);
    const nbIdx = nbRows.findIndex((x) => x.includes(NB_NAME));
    check(nbRows[nbIdx].includes(`${NB_PATH} · cell 2, line 5`), `its row names the cell: ${NB_PATH} · cell 2, line 5`);
    for (let i = 0; i < nbIdx; i += 1) await page.keyboard.press('ArrowDown');
    await sleep(300);
    const nbAccepted = Date.now();
    await page.keyboard.press('Enter');
    await waitFor('the picker to close', async () => !(await quickOpen()), 15_000);
    await sleep(700);
    const nbShown = await waitFor('the notebook editor', () => events().filter((e) => e.t >= nbAccepted - 2000
      && e.event === 'notebook' && (e.notebook || '').endsWith(NB_PATH)).pop(), 15_000);
    check(JSON.stringify(nbShown.selections) === '[[1,2]]', `the notebook editor opened with its second cell selected (${JSON.stringify(nbShown.selections)})`);
    const inCell = await waitFor('the cursor in the cell', () => events().filter((e) => e.t >= nbAccepted
      && e.event === 'selection' && (e.notebook || '').endsWith(NB_PATH)).pop(), 15_000);
    check(inCell.cell === 1 && inCell.line === 5 && inCell.character === 4 && inCell.empty,
      `the cursor is on the name inside the cell (cell ${inCell.cell + 1}, line ${inCell.line}, column ${inCell.character + 1}), nothing selected`);
    const nbView = await page.evaluate(() => ({
      tab: document.querySelector('.tabs-container .tab.active')?.getAttribute('aria-label') || '',
      notebook: !!document.querySelector('.part.editor .notebookOverlay, .part.editor .notebook-editor'),
    }));
    check(nbView.tab.includes('sales.ipynb') && nbView.notebook, `the tab "${nbView.tab.split(',')[0]}" is the notebook editor, not the JSON text`);
    await page.screenshot({ path: path.join(tmp, 'notebook.png') });

    // --- Find Similar Code from that cell: the server is asked about the notebook, the cell, the line ---
    await runFromPalette(page, 'Needle: Find Similar Code', { focus: false });
    const nbSimilar = await waitFor('code similar to the cell', async () => {
      const v = await page.evaluate(() => ({
        title: document.querySelector('.quick-input-widget .quick-input-title')?.textContent || '',
        rows: [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')].map((x) => x.textContent),
      }));
      return /Code Similar to/.test(v.title) && v.rows.some((x) => /\.(py|js):\d+|cell \d+|No similar|failed/.test(x)) ? v : null;
    }, 30_000);
    log(`similar to the cell (${nbSimilar.title}):\n  ${nbSimilar.rows.join('\n  ')}`);
    check(nbSimilar.title.includes(`${NB_PATH} · cell 2, line 5`), `Find Similar Code from a notebook cell answers for ${NB_PATH} · cell 2, line 5`);
    // A row starts with its title (the snippet of another chunk may call the function).
    check(nbSimilar.rows.some((x) => /\.(py|js):\d+|cell \d+/.test(x)) && !nbSimilar.rows.some((x) => x.trim().startsWith(NB_NAME)),
      `it lists similar code, ${NB_NAME} itself left out`);
    await page.keyboard.press('Escape');
    timings.notebook = (Date.now() - t) / 1000;

    // --- Find Similar Code is not offered for an untitled document ---------------------------------
    t = Date.now();
    const palette = async (title) => {
      await waitFor('the quick input to close', async () => !(await quickOpen()), 5_000);
      await sleep(300);
      await page.keyboard.press('F1');
      await waitFor('the command palette', () => page.evaluate(() => {
        const w = document.querySelector('.quick-input-widget');
        const input = w?.querySelector('.quick-input-box input');
        return !!w && w.style.display !== 'none' && input === document.activeElement && input.value.startsWith('>');
      }), 15_000);
      await page.keyboard.type(title, { delay: 10 });
      await sleep(400);
      return resultRows();
    };
    await palette('File: New Untitled Text File');
    await page.keyboard.press('Enter');
    await waitFor('an untitled editor', () => events().filter((e) => e.event === 'editor').pop()?.uri?.startsWith('untitled:'), 10_000);
    const offered = await palette('Needle: Find Similar');
    check(!offered.some((x) => /Find Similar Code/.test(x)), `Find Similar Code is not in the palette for an untitled document (${JSON.stringify(offered.slice(0, 2))})`);
    await page.keyboard.press('Escape');
    await palette('View: Revert and Close Editor');
    await page.keyboard.press('Enter');
    timings.untitled = (Date.now() - t) / 1000;

    // --- Escape after a preview closes the tab opened only to preview it (as Quick Open does) -------
    t = Date.now();
    await waitFor('the quick input to close', async () => !(await quickOpen()), 5_000);
    const tabLabels = () => page.evaluate(() => [...document.querySelectorAll('.tabs-container .tab')].map((x) => x.getAttribute('aria-label') || ''));
    check(!(await tabLabels()).some((x) => x.startsWith('strings.js')), 'web/strings.js has no tab before the search');
    const escaped = Date.now();
    await openSearch();
    await page.keyboard.type('escape html special characters', { delay: 5 });
    await waitFor('a preview of web/strings.js', () =>
      events().find((e) => e.t > escaped && e.event === 'selection' && (e.uri || '').endsWith('web/strings.js')), 30_000);
    check((await tabLabels()).some((x) => x.startsWith('strings.js')), 'the first result is previewed in a tab');
    await page.keyboard.press('Escape');
    const leftTabs = await waitFor('the preview tab to close after Escape', async () => {
      const labels = await tabLabels();
      return labels.some((x) => x.startsWith('strings.js')) ? null : labels;
    }, 10_000);
    check(true, `Escape closed the preview, the other tabs stay (${JSON.stringify(leftTabs.map((x) => x.split(',')[0]))})`);
    timings.escapePreview = (Date.now() - t) / 1000;

    // The server's life cycle, driven through `needle.server.*` in Machine/settings.json (where a remote window
    // reads them) and SIGKILL: every server process of this run carries NEEDLE_E2E_MARK=<tmp> (markedProcesses).
    const machine = (patch = {}) =>
      fs.writeFileSync(path.join(dataDir, 'Machine', 'settings.json'), JSON.stringify({ ...settings, ...patch }, null, 2));
    const needleLog = () => findFiles(path.join(dataDir, 'logs'), /Needle\.log$/).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    const servers = () => markedProcesses(tmp).filter((p) => /needle/.test(p.cmd) && /\blsp\b/.test(p.cmd));
    const toastMatching = (re) =>
      page.evaluate((src) => {
        const t = [...document.querySelectorAll('.notification-toast')].find((x) => new RegExp(src).test(x.textContent));
        return t ? { text: t.textContent, buttons: [...t.querySelectorAll('.monaco-button')].map((b) => b.textContent) } : null;
      }, re.source);
    const clearToasts = () =>
      page.evaluate(() => {
        for (const b of document.querySelectorAll('.notification-toast .codicon-notifications-clear')) b.click();
      });
    const script = (name, body) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return file;
    };

    // --- a needle.server.* change that leaves the command line as it was does not restart ---------
    t = Date.now();
    const running = await waitFor('one running server', () => (servers().length === 1 ? servers()[0] : null), 10_000);
    machine({ 'needle.server.args': ['lsp'] }); // the default, spelled out
    await waitFor('the extension to see the change', () => /not the command line/.test(needleLog()), 10_000);
    await sleep(1000);
    check(servers().length === 1 && servers()[0].pid === running.pid, `an equal needle.server.* value keeps the server (pid ${running.pid})`);
    timings.sameValue = (Date.now() - t) / 1000;

    // --- a search right after a crash waits for the automatic restart -----------------------------
    t = Date.now();
    await openSearch();
    await page.keyboard.type(QUERY, { delay: 5 });
    await waitFor('results before the crash', async () => (await resultRows()).some((x) => x.includes(EXPECT_NAME)), 30_000);
    process.kill(running.pid, 'SIGKILL');
    await page.keyboard.down('Control');
    await page.keyboard.press('a');
    await page.keyboard.up('Control');
    await page.keyboard.type('escape html special characters', { delay: 5 });
    const afterCrash = await waitFor('an answer after the crash', async () => {
      const r = await resultRows();
      return r.some((x) => x.includes('escapeHtml') || /Search failed/.test(x)) ? r : null;
    }, 30_000);
    check(afterCrash.some((x) => x.includes('escapeHtml')) && !afterCrash.some((x) => /Search failed/.test(x)),
      `a search typed right after the server was killed waits for its restart and answers (${JSON.stringify(afterCrash[0]?.slice(0, 60))})`);
    check(/stopped unexpectedly \(the server was stopped by signal SIGKILL/.test(needleLog()), 'the log says the server crashed (signal) and is restarted');
    timings.crash = (Date.now() - t) / 1000;

    // --- the open picker follows the server's state: an error row appears and clears by itself ----
    t = Date.now();
    const noSuch = path.join(tmp, 'no-such-needle');
    machine({ 'needle.server.path': noSuch });
    const down = await waitFor('the open picker to show that the server is down', async () =>
      (await resultRows()).find((x) => /Search failed/.test(x) && /not running/.test(x)), 15_000);
    check(true, `the open picker re-ran its query when the server went down: ${JSON.stringify(down.slice(0, 90))}`);
    const toast = await waitFor('the error notification', () => toastMatching(/could not start/), 15_000);
    check(/does not exist/.test(toast.text), `bad needle.server.path reported: ${toast.text.slice(0, 160)}`);
    check(['Open Settings', 'Show Log'].every((b) => toast.buttons.includes(b)), `error notification offers ${toast.buttons.join(', ')}`);
    await page.screenshot({ path: path.join(tmp, 'bad-path.png') });
    machine();
    await waitFor('the open picker to answer again once the server is back', async () =>
      (await resultRows()).some((x) => x.includes('escapeHtml')), 30_000);
    check(true, 'the error row cleared by itself when the server came back (no typing)');
    await page.keyboard.press('Escape');
    timings.pickerFollows = (Date.now() - t) / 1000;

    // --- a server that keeps crashing: 5 times in 3 minutes, then a message of its own --------------
    t = Date.now();
    await clearToasts();
    const killed = new Set();
    // Crashes since the last (re)start count: kill each new server until the extension gives up (5 in 3 minutes).
    for (let i = 0; i < 5 && !(await toastMatching(/keeps crashing/)); i += 1) {
      const victim = await waitFor(`server #${i + 1} to be up`, async () =>
        servers().find((p) => !killed.has(p.pid)) || (await toastMatching(/keeps crashing/) ? 'gave up' : null), 20_000);
      if (victim === 'gave up') break;
      killed.add(victim.pid);
      await sleep(300);
      process.kill(victim.pid, 'SIGKILL');
    }
    const loop = await waitFor('the crash-loop notification', () => toastMatching(/keeps crashing/), 15_000);
    check(/keeps crashing \(5 times in 3 minutes/.test(loop.text), `after 5 crashes in 3 minutes (${killed.size} killed here)`);
    check(!/could not start|Install Needle/.test(loop.text) && loop.buttons.includes('Show Log'),
      `a crash loop says so: ${loop.text.replace(/^.*?Needle: the/, 'Needle: the').slice(0, 150)}`);
    await sleep(1500);
    check(servers().length === 0, 'and is not restarted a sixth time');
    timings.crashLoop = (Date.now() - t) / 1000;

    // --- a command that starts but never answers: stopped after needle.server.startTimeout -------
    t = Date.now();
    await clearToasts();
    const hang = script('hang.sh', 'echo "hang.sh: answering nothing" >&2\nexec sleep 300');
    machine({ 'needle.server.path': hang, 'needle.server.startTimeout': 2 });
    const timeout = await waitFor('the start timeout notification', () => toastMatching(/did not answer/), 15_000);
    check(/within 2 s/.test(timeout.text), `a server that never answers is reported: ${timeout.text.replace(/^.*?Needle: the/, 'Needle: the').slice(0, 130)}`);
    await waitFor('the hanging process to be stopped', () => markedProcesses(tmp).length === 0, 5_000);
    check(true, 'and its process is stopped');
    timings.startTimeout = (Date.now() - t) / 1000;

    // --- a settings change wins over a start that hangs; a server that exits says why -----------
    t = Date.now();
    await clearToasts();
    const logMark = needleLog().length;
    machine({ 'needle.server.path': hang, 'needle.server.startTimeout': 120 });
    const hung = await waitFor('the hanging server to start', () => markedProcesses(tmp).find((p) => /sleep 300/.test(p.cmd)), 10_000);
    await sleep(1000);
    const fails = script('fails.sh', 'echo "Traceback (most recent call last):" >&2\necho "/usr/bin/python3: No module named codeneedle" >&2\nexit 3');
    machine({ 'needle.server.path': fails });
    const exited = await waitFor('the exit notification', () => toastMatching(/exited with code/), 15_000);
    check(/exited with code 3; its last output: .*No module named codeneedle/.test(exited.text) && !/Pending response|disposed/.test(exited.text),
      `a server that exits at start shows its exit code and stderr: ${exited.text.replace(/^.*?Needle: the/, 'Needle: the').slice(0, 170)}`);
    await waitFor('the hanging server to be stopped', () => !markedProcesses(tmp).some((p) => p.pid === hung.pid), 5_000);
    check(true, `the settings change stopped the hanging start (pid ${hung.pid} gone, no orphan)`);
    const logSince = needleLog().slice(logMark);
    check(!/got disposed and can't be restarted|stopped unexpectedly/.test(logSince), 'no restart of the old command, no "Client got disposed" in the log');
    timings.restartWins = (Date.now() - t) / 1000;

    // --- "Open Settings" opens the settings where needle.server.path applies (Remote in code-server) -
    t = Date.now();
    await clearToasts();
    machine({ 'needle.server.path': noSuch });
    await waitFor('the error notification', () => toastMatching(/does not exist/), 15_000);
    await page.evaluate(() => {
      const t = [...document.querySelectorAll('.notification-toast')].find((x) => /does not exist/.test(x.textContent));
      [...t.querySelectorAll('.monaco-button')].find((b) => b.textContent === 'Open Settings').click();
    });
    const tab = await waitFor('the settings editor', () =>
      page.evaluate(() => {
        const ed = document.querySelector('.settings-editor');
        if (!ed) return null;
        const checked = ed.querySelector('.settings-tabs-widget .action-label.checked')?.textContent || '';
        const rows = [...ed.querySelectorAll('.setting-item-label')].map((x) => x.textContent);
        const query = ed.querySelector('.settings-header .suggest-input-container textarea, .settings-header input')?.value || '';
        return rows.some((r) => /Path/.test(r)) ? { checked, rows, query } : null;
      }), 15_000);
    check(/Remote/.test(tab.checked),
      `Open Settings shows the ${JSON.stringify(tab.checked)} tab, where the server settings apply (${tab.rows.slice(0, 3).join(', ')})`);
    await page.screenshot({ path: path.join(tmp, 'open-settings.png') });
    machine();
    timings.openSettings = (Date.now() - t) / 1000;

    // --- a second window: Restricted Mode, and a window without a folder -------------------------
    t = Date.now();
    await restrictedSession(browser, tmp, extDir, settings);
    timings.restricted = (Date.now() - t) / 1000;

    // --- a third window on a big folder: Needle: Cancel Indexing stops the first index ------------
    t = Date.now();
    await cancelSession(browser, tmp, extDir, settings);
    timings.cancel = (Date.now() - t) / 1000;

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
