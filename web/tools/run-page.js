#!/usr/bin/env node
// Opens a page in a headless browser, Debian's chromium (CDP) or firefox-esr (WebDriver
// BiDi), both driven by npm puppeteer-core, and prints what the page leaves in
// `window.quantannResult` as JSON, once it is set.
//   node tools/run-page.js URL [--browser chromium|firefox] [--timeout 600] [--executable PATH] [--download-mbps N] [--screenshot FILE.png]
// The page reports progress with console.log; it is forwarded to stderr.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startRssProbe } from './process-memory.js';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
export const BROWSERS = { chromium: CHROMIUM, firefox: FIREFOX };
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];
// a fresh profile's first-run pages, telemetry and update checks off; OPFS and workers are on by default
const FIREFOX_PREFS = { 'browser.shell.checkDefaultBrowser': false, 'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false, 'app.update.enabled': false, 'browser.aboutwelcome.enabled': false };

let puppeteer = null;
try { puppeteer = (await import('puppeteer-core')).default; } catch { /* reported by browserSkip */ }

/** Why `name` cannot run here (a string for node:test's `skip`), or false. */
export function browserSkip(name) {
  if (!BROWSERS[name]) return `unknown browser ${name}`;
  if (!existsSync(BROWSERS[name])) return `no ${BROWSERS[name]}`;
  if (!puppeteer) return 'npm puppeteer-core not installed (cd web && npm ci)';
  return false;
}

/**
 * A headless browser with a fresh profile; close() removes the profile. network: false
 * leaves DevTools' Network domain off in pages and Workers: with it on, Chromium keeps a
 * copy of each response body (up to ~100 MB) in the renderer, which a memory measure of the
 * page would count (tools/process-memory.js); page.emulateNetworkConditions needs it on.
 */
export async function launch(name = 'chromium', { executablePath = BROWSERS[name], network = true } = {}) {
  const why = browserSkip(name);
  if (why && !(executablePath && existsSync(executablePath) && puppeteer)) throw new Error(`run-page: ${why}`);
  const profile = mkdtempSync(join(tmpdir(), `quantann-${name}-`));
  const browser = name === 'firefox'
    ? await puppeteer.launch({ browser: 'firefox', executablePath, headless: true, userDataDir: profile, extraPrefsFirefox: FIREFOX_PREFS, networkEnabled: network })
    : await puppeteer.launch({ browser: 'chrome', executablePath, headless: true, userDataDir: profile, args: CHROMIUM_ARGS, networkEnabled: network });
  const close = browser.close.bind(browser);
  browser.close = async () => { try { await close(); } finally { rmSync(profile, { recursive: true, force: true }); } };
  return browser;
}

/**
 * Loads `url`, waits for window.quantannResult and returns it. browser: 'chromium' |
 * 'firefox'. sampleMemory (Chromium only: CDP Runtime.getHeapUsage every `sampleMemory` ms
 * while the page runs, the page and its Workers summed) adds `_memory: {peakHeapUsed, peakBacking, peakSum, samples}` to the
 * result: JS heap used, and ArrayBuffer backing stores (wasm memories among them).
 * instance: a browser from launch() to open the page in (a new tab; left open), instead of
 * a new browser with a fresh profile. downloadMbps (Chromium only): the page's network
 * throttled to that many Mbit/s (CDP network emulation, 10 ms latency). screenshot: a PNG
 * path, the page as it is once the result is set (viewport `width` x its content's height).
 * rss (both browsers, Linux): the peak resident growth of the process that hosts the page
 * (tools/process-memory.js) adds `_rss: {bytes, host, processes}`; the tab first opens a
 * document of the page's origin, so that the origin's process exists before the probe, and
 * then navigates itself to `url` (same site: the same process). A browser launched here for
 * it has DevTools' Network domain off (launch's `network`); pass an `instance` launched so.
 */
export async function runPage(url, { browser: name = 'chromium', timeout = 600, executablePath, sampleMemory = 0, rss = false, instance, downloadMbps, screenshot, width = 800,
  log = (m) => process.stderr.write(m + '\n') } = {}) {
  const browser = instance ?? await launch(name, { executablePath: executablePath ?? BROWSERS[name], network: !rss || !!downloadMbps });
  let sampler = null, page = null;
  try {
    page = await browser.newPage();
    page.on('console', (m) => log(`[page] ${m.text()}`));
    page.on('pageerror', (e) => log(`[page error] ${e.message}`));
    if (downloadMbps) {
      if (name !== 'chromium') throw new Error('run-page: network throttling needs Chromium');
      await page.emulateNetworkConditions({ download: downloadMbps * 1e6 / 8, upload: downloadMbps * 1e6 / 8, latency: 10 });
    }
    const memory = { peakHeapUsed: 0, peakBacking: 0, peakSum: 0, samples: 0 };
    if (sampleMemory && name === 'chromium') {
      const cdp = await page.createCDPSession();
      let on = true;
      sampler = { stop: () => { on = false; return loop; } };
      const loop = (async () => {
        while (on) {
          // the page's isolate and each Worker's (a model's wasm memory lives in its Worker)
          const hs = (await Promise.all([cdp, ...page.workers().map((w) => w.client)].map((c) =>
            c.send('Runtime.getHeapUsage').catch(() => null)))).filter(Boolean);
          if (hs.length) {
            const used = hs.reduce((a, h) => a + h.usedSize, 0), backing = hs.reduce((a, h) => a + (h.backingStorageSize ?? 0), 0);
            memory.peakHeapUsed = Math.max(memory.peakHeapUsed, used);
            memory.peakBacking = Math.max(memory.peakBacking, backing);
            memory.peakSum = Math.max(memory.peakSum, used + backing);
            memory.samples++;
          }
          await new Promise((r) => setTimeout(r, sampleMemory));
        }
      })();
    }
    let probe = null;
    if (rss) {
      // a small document of the origin (a module the pages share); a navigation the page
      // itself starts stays in its process, where page.goto may move to a fresh one
      await page.goto(new URL('/page-lib.js', url).href);
      probe = startRssProbe(browser.process().pid);
      await Promise.all([page.waitForNavigation({ timeout: timeout * 1000 }), page.evaluate((u) => { location.href = u; }, url)]);
    } else {
      await page.goto(url);
    }
    await page.waitForFunction(() => window.quantannResult !== undefined, { timeout: timeout * 1000, polling: 200 });
    await sampler?.stop();
    const result = { ...await page.evaluate(() => window.quantannResult), ...(probe ? { _rss: probe.growth() } : {}) };
    if (screenshot) {
      await page.setViewport({ width, height: 600 });
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    return sampler ? { ...result, _memory: memory } : result;
  } finally {
    await sampler?.stop();
    if (instance) await page?.close().catch(() => {});
    else await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : def; };
  const timeout = Number(opt('--timeout', 600));
  const browser = opt('--browser', 'chromium');
  const executablePath = opt('--executable', opt('--chromium', undefined));
  const downloadMbps = Number(opt('--download-mbps', 0)) || undefined;
  const screenshot = opt('--screenshot', undefined);
  runPage(argv[0], { browser, timeout, executablePath, downloadMbps, screenshot }).then(
    (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
    (e) => { process.stderr.write(`run-page: ${e.message}\n`); process.exit(1); });
}
