#!/usr/bin/env node
// Timings of web/ask.html in Chromium and Firefox: embed, search, prompt tokens, first token
// (end to end, as the page sees it), decode tok/s, total; medians over questions × rounds,
// the browsers interleaved, each keeping its profile (the first load fills OPFS, the rest
// read from it). Optionally a screenshot of the page (Chromium, the last answer).
//   node tools/ask-bench.js DIR INDEX.qann EMBEDDER.gguf LLM.gguf [--rounds 3] [--k 5] [--max-tokens 32]
//        [--question Q ...] [--warmup Q] [--screenshot docs/ask-page.png]
// --warmup: each page asks Q first, so the timed question finds the system block in the
// generator's KV cache (as a second question in a session does).
// DIR is served at /d/ (the index, its .texts, the embedder); the LLM's folder at /llm/.
import { basename, dirname, resolve } from 'node:path';

import { browserSkip, launch, runPage } from './run-page.js';
import { startServer } from '../testlib/server.js';

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : def; };
const rounds = Number(opt('--rounds', 3)), k = opt('--k', '5'), maxTokens = opt('--max-tokens', '32');
const screenshot = opt('--screenshot', undefined), warmup = opt('--warmup', undefined);
const questions = [];
for (let q; (q = opt('--question', undefined)) !== undefined;) questions.push(q);
if (!questions.length) questions.push('What is an eschar?', 'What is a haiku?', 'What is a debian package?');
const [dir, index, embedder, llm] = argv;
if (!llm) {
  process.stderr.write('usage: node tools/ask-bench.js DIR INDEX.qann EMBEDDER.gguf LLM.gguf [options]\n');
  process.exit(2);
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const browsers = ['chromium', 'firefox'].filter((b) => !browserSkip(b));
const server = await startServer([`/d=${resolve(dir)}`, `/llm=${dirname(resolve(llm))}`]);
const instances = Object.fromEntries(await Promise.all(browsers.map(async (b) => [b, await launch(b)])));
const runs = Object.fromEntries(browsers.map((b) => [b, []]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const question of questions) {
      for (const b of browsers) {
        const q = new URLSearchParams({ index: `/d/${index}`, embedder: `/d/${embedder}`, generator: `/llm/${basename(llm)}`, k, maxTokens, question,
          ...(warmup ? { warmup } : {}) });
        const last = r === rounds - 1 && question === questions.at(-1) && b === 'chromium';
        const res = await runPage(`${server.url}/ask.html?${q}`, { browser: b, instance: instances[b], timeout: 900, log: () => {},
          screenshot: last ? screenshot : undefined, width: 760 });
        if (!res.ok) throw new Error(`${b}: ${res.error}`);
        runs[b].push({ ...res.timings, loadMs: res.loadMs, cached: Object.values(res.cached).every(Boolean), sources: res.sources.length });
        process.stderr.write(`${b} round ${r} ${JSON.stringify(question)}: first token ${res.timings.firstTokenMs.toFixed(0)} ms, ${res.timings.decodeTokS.toFixed(1)} tok/s\n`);
      }
    }
  }
} finally {
  await Promise.all(Object.values(instances).map((i) => i.close()));
  server.close();
}
const out = {};
for (const [b, list] of Object.entries(runs)) {
  const m = (key) => median(list.map((x) => x[key]));
  out[b] = { runs: list.length, sources: m('sources'), promptTokens: m('promptTokens'), embedMs: m('embedMs'), searchMs: m('searchMs'),
    prefillMs: m('prefillMs'), firstTokenMs: m('firstTokenMs'), decodeTokS: m('decodeTokS'), totalMs: m('totalMs'),
    firstLoadMs: list[0].loadMs, cachedLoadMs: median(list.slice(1).map((x) => x.loadMs)), laterFromOpfs: list.slice(1).every((x) => x.cached) };
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
