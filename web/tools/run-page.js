#!/usr/bin/env node
// Opens a page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// and prints what it leaves in `window.quantannResult` as JSON, once it is set.
//   node tools/run-page.js URL [--timeout 600] [--chromium /usr/bin/chromium]
// The page reports progress with console.log; it is forwarded to stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];

export async function runPage(url, { timeout = 600, executablePath = CHROMIUM, log = (m) => process.stderr.write(m + '\n') } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'quantann-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: ARGS });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => log(`[page] ${m.text()}`));
    page.on('pageerror', (e) => log(`[page error] ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => window.quantannResult !== undefined, null, { timeout: timeout * 1000, polling: 200 });
    return await page.evaluate(() => window.quantannResult);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : def; };
  const timeout = Number(opt('--timeout', 600));
  const executablePath = opt('--chromium', CHROMIUM);
  runPage(argv[0], { timeout, executablePath }).then(
    (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
    (e) => { process.stderr.write(`run-page: ${e.message}\n`); process.exit(1); });
}
