// Ask your documents under Node (web/src/ask.js, texts.js): the text store read through the
// kernel's GGUF reader equal to what native wrote; prompts built here token for token equal
// to native quantann.ask.build_prompt's (passages cut, the weakest dropped on overflow);
// clear errors; and the whole pipeline's sources and greedy tokens equal native ask with the
// scalar kernels (tests/web/ask_native.py). Skips when the models or Python are missing.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ask, AskError, buildPrompt, messages, retrieve } from '../src/ask.js';
import { CONSTANTS } from '../src/constants.js';
import { Embedder } from '../src/embedder.js';
import { Generator } from '../src/generator.js';
import { FormatError, openIndex } from '../src/index.js';
import { openTexts } from '../src/texts.js';
import { minilm, runNative, smollm2 } from '../testlib/models.js';

const ASK_NATIVE = 'tests/web/ask_native.py';
const emb = minilm(), llm = smollm2();
const skip = emb.skip || llm.skip || false;
let dir, made, gen;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'quantann-ask-'));
  made = runNative(ASK_NATIVE, { op: 'make', dir, model: emb.path });
  gen = await Generator.open(llm.path);
});
after(() => {
  gen?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('messages are the native chat: the system text of constants.json, numbered passages', () => {
  const m = messages('Why?', ['a', 'b']);
  assert.equal(m[0].role, 'system');
  assert.equal(m[0].content, CONSTANTS.ask.system);
  assert.equal(m[1].content, 'Passages:\n[1] a\n[2] b\n\nQuestion: Why?');
  assert.equal(messages('Why?', [])[1].content, 'Question: Why?');
});

test('the text store: texts and fields by id, as native wrote them; bad files by name', { skip }, async () => {
  assert.ok(!made.skip, made.skip);
  const texts = await openTexts(readFileSync(made.index + '.texts'));
  assert.equal(texts.count, 12);
  assert.match(texts.model, /minilm/);
  const got = texts.get([0n, 1n, 6n, 99n]);
  assert.match(got[0].text, /^An eschar is a slough/);
  assert.deepEqual(got[0].fields, { src: 'wordnet', url: 'https://example.org/eschar' });
  assert.equal(got[2].text, 'naïve café — 東京 🙂: text in many scripts is kept byte for byte.');
  assert.deepEqual(got[2].fields, { lang: 'mixed' });
  assert.deepEqual(texts.get([3n])[0].fields, {});
  assert.equal(got[3], null);
  await assert.rejects(openTexts(readFileSync(made.index)), (e) => e instanceof FormatError && /not a quantann text store/.test(e.message));
  const cut = readFileSync(made.index + '.texts').subarray(0, 200);
  await assert.rejects(openTexts(cut), FormatError);
});

test('prompts equal native build_prompt: cut passages, the weakest dropped, the question too long', { skip, timeout: 300000 }, async () => {
  const texts = await openTexts(readFileSync(made.index + '.texts'));
  const passages = texts.get([...Array(12).keys()].map(BigInt)).map((t) => t.text);
  const sources = passages.map((text, i) => ({ row: i, id: i, distance: 0, text }));
  const q = 'What is an eschar, and where does it form?';
  const cases = [[q, 64, undefined], [q, 64, 0], [q, gen.nCtx - 300, undefined], ['naïve?  ', 16, 8]];
  for (const [question, maxTokens, passageTokens] of cases) {
    const want = runNative(ASK_NATIVE, { op: 'prompt', llm: llm.path, question, passages, max_tokens: maxTokens,
      ...(passageTokens === undefined ? {} : { passage_tokens: passageTokens }) });
    assert.ok(!want.skip, want.skip);
    const got = await buildPrompt(gen, question, sources, maxTokens, passageTokens);
    assert.deepEqual(got.ids, want.ids, `${question} maxTokens=${maxTokens} passageTokens=${passageTokens}`);
    assert.equal(got.dropped, want.dropped);
  }
  assert.ok((await buildPrompt(gen, q, sources, gen.nCtx - 300)).dropped > 0, 'the overflow case drops passages');
  await assert.rejects(buildPrompt(gen, 'why '.repeat(3000), [], 64), (e) => e instanceof AskError && /the question is too long/.test(e.message));
  await assert.rejects(buildPrompt(gen, q, sources, gen.nCtx), /maxTokens must be an integer in 1\.\./);
});

test('errors: an empty question, an index without texts, k out of range', { skip }, async () => {
  const index = await openIndex(made.index);
  const texts = await openTexts(readFileSync(made.index + '.texts'));
  const docs = { index, texts, embedder: {}, generator: gen };
  await assert.rejects(ask(docs, '   '), (e) => e instanceof AskError && e.message === 'the question is empty');
  await assert.rejects(retrieve({ index, texts: null, embedder: {} }, 'why'), /has no texts beside it, so it has no passages to answer from/);
  await assert.rejects(retrieve(docs, 'why', CONSTANTS.ask.max_k + 1), /k must be an integer in 1\.\.20/);
  index.close();
});

test('the pipeline: sources and greedy tokens equal native ask (scalar kernels)', { skip, timeout: 600000 }, async () => {
  const question = 'What is an eschar?', k = 5, maxTokens = 8;
  const want = runNative(ASK_NATIVE, { op: 'ask', index: made.index, llm: llm.path, question, k, max_tokens: maxTokens });
  assert.ok(!want.skip, want.skip);
  const docs = { index: await openIndex(made.index), texts: await openTexts(readFileSync(made.index + '.texts')),
    embedder: await Embedder.open(emb.path), generator: gen };
  let streamed = '', shown = null;
  const a = await ask(docs, question, { k, maxTokens, onSources: (s) => { shown = s; }, onToken: (p) => { streamed += p; } });
  assert.deepEqual(a.sources.map((s) => [s.row, s.id, s.text, s.fields]), want.sources.map((s) => [s.row, s.id, s.text, s.fields]));
  a.sources.forEach((s, i) => assert.ok(Math.abs(s.distance - want.sources[i].distance) < 1e-6, `distance ${i}`));
  assert.equal(shown, a.sources);
  assert.deepEqual(a.promptIds, want.prompt_ids);
  assert.deepEqual(a.tokens, want.tokens);
  assert.equal(a.answer, want.answer);
  assert.equal(streamed, a.answer);
  for (const key of ['embedMs', 'searchMs', 'firstTokenMs', 'promptTokens']) assert.ok(a.timings[key] > 0, key);
  docs.embedder.close();
  docs.index.close();
});
