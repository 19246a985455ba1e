// Ask your documents in the browser: the steps of quantann/ask.py, on the same kernels
// (openEmbedder, openIndex, openGenerator) and the same constants ("ask" in
// quantann/constants.json), so that a prompt here is token for token the prompt native
// builds for the same passages (web/test/ask.test.js holds that).
//
//   const docs = await openAsk({ index: '/d/notes.qann', embedder: '/m/minilm.gguf', generator: '/m/smollm2.gguf' });
//   const a = await docs.ask('What is an eschar?', { k: 5, maxTokens: 64,
//     onSources: (s) => show(s), onToken: (piece) => out.append(piece) });
//   a.answer, a.sources ([{row, id, distance, text, fields}]), a.timings, a.dropped
import { CONSTANTS } from './constants.js';
import { openEmbedder } from './embedder.js';
import { openGenerator } from './generator.js';
import { openIndex } from './index.js';
import { parseSize } from './sizes.js';
import { streamInto } from './stream-load.js';
import { hybridSearch, openTexts } from './texts.js';

const ASK = CONSTANTS.ask;
export const MAX_K = ASK.max_k;
export const PASSAGE_TOKENS = ASK.passage_tokens;
const now = () => performance.now();

export class AskError extends Error {
  constructor(message) { super(message); this.name = 'AskError'; }
}

export function checkQuestion(question) {
  if (typeof question !== 'string') throw new AskError(`the question must be a string, got ${typeof question}`);
  if (!question.trim()) throw new AskError('the question is empty');
  return question.trim(); // Python's str.strip() and String.trim() strip the same whitespace for text people type
}

/** The chat: the system instruction, then the passages (best first, numbered [1]..; or with
 * ASK.best_last listed weakest first, keeping their numbers) and the question. */
export function messages(question, passages) {
  const numbered = passages.map((p, i) => `[${i + 1}] ${p}`);
  if (ASK.best_last) numbered.reverse();
  const user = passages.length ? `Passages:\n${numbered.join('\n')}\n\nQuestion: ${question}` : `Question: ${question}`;
  return [{ role: 'system', content: ASK.system }, { role: 'user', content: user }];
}

/** text, or its first passageTokens tokens and an ellipsis (0 or null: the whole text). */
export async function cut(gen, text, passageTokens) {
  if (!passageTokens) return text;
  const ids = await gen.tokenize(text, { addBos: false });
  return ids.length <= passageTokens ? text : (await gen.detokenize(ids.slice(0, passageTokens))).trimEnd() + ' ...';
}

/**
 * Prompt token ids with as many of sources (best first) as leave maxTokens of room in the
 * context, and how many were dropped (the weakest): {ids, dropped}.
 */
export async function buildPrompt(gen, question, sources, maxTokens, passageTokens = PASSAGE_TOKENS) {
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens >= gen.nCtx)
    throw new AskError(`maxTokens must be an integer in 1..${gen.nCtx - 1} (the context is ${gen.nCtx} tokens), got ${maxTokens}`);
  if (passageTokens != null && !(Number.isInteger(passageTokens) && passageTokens >= 0))
    throw new AskError(`passageTokens must be an integer >= 0 (0: whole passages), got ${passageTokens}`);
  const room = gen.nCtx - maxTokens;
  const texts = [];
  for (const s of sources) texts.push(await cut(gen, s.text, passageTokens));
  let ids = [];
  for (let keep = sources.length; keep >= 0; keep--) {
    ids = await gen.tokenize(await gen.renderChat(messages(question, texts.slice(0, keep))), { addBos: false });
    if (ids.length <= room) return { ids, dropped: sources.length - keep };
  }
  throw new AskError(`the question is too long: with no passage the prompt has ${ids.length} tokens, and with `
    + `maxTokens=${maxTokens} that exceeds the context of ${gen.nCtx} tokens`);
}

/** The top-k passages for question, best first, and {embedMs, searchMs}. */
export async function retrieve({ index, texts, embedder }, question, k = 5, ef = 64, hybrid = undefined) {
  if (!index || index.count === 0) throw new AskError('the index is empty: there is nothing to answer from');
  if (!texts) throw new AskError(`${index.source?.name ?? 'the index'} has no texts beside it, so it has no passages to answer from: `
    + 'build it with --texts PASSAGES.jsonl (or from a .jsonl of texts)');
  if (!embedder) throw new AskError('the index has no embedding model to embed the question with');
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new AskError(`k must be an integer in 1..${MAX_K} (passages in the prompt), got ${k}`);
  k = Math.min(k, index.count);
  const t0 = now();
  const [q] = await embedder.embed([question]);
  const t1 = now();
  hybrid ??= Boolean(texts.lexical); // words and vectors fused when the store has a lexical index (texts.js)
  const r = hybrid ? await hybridSearch(index, texts, q, question, { k, ef: Math.max(ef, k) })
    : await index.search(q, { k, ef: Math.max(ef, k) });
  const t2 = now();
  const found = texts.get(r.ids);
  const sources = [];
  r.ids.forEach((id, i) => {
    if (found[i] && r.rows[i] >= 0)
      // row: the passage's line in the build input, as native (TextIndex.rows): its id unless user ids
      sources.push({ row: index.hasUserIds ? r.rows[i] : Number(id), id: Number(id), distance: r.distances[i], text: found[i].text, fields: found[i].fields });
  });
  return { sources, timings: { embedMs: t1 - t0, searchMs: t2 - t1 } };
}

/**
 * The whole answer: retrieve, build the prompt, generate (streamed to onToken).
 * options: k (5), maxTokens (256), temperature (0), seed, ef (64), passageTokens, hybrid (default:
 * when the texts have a lexical index), topK,
 * topP, minP, repeatPenalty, onSources(sources), onToken(piece).
 */
export async function ask(docs, question, { k = 5, maxTokens = 256, temperature = 0, seed, ef = 64, passageTokens = PASSAGE_TOKENS,
  hybrid, onSources, onToken, ...sample } = {}) {
  const t0 = now();
  question = checkQuestion(question);
  const { sources: all, timings } = await retrieve(docs, question, k, ef, hybrid);
  const { ids, dropped } = await buildPrompt(docs.generator, question, all, maxTokens, passageTokens);
  const sources = all.slice(0, all.length - dropped);
  onSources?.(sources);
  let first = null;
  const tGen = now();
  const g = await docs.generator.generate(ids, { ...sample, maxTokens, temperature, seed,
    onToken: (piece) => { first ??= now(); onToken?.(piece); } });
  const tEnd = now();
  const st = g.stats;
  Object.assign(timings, {
    promptTokens: st.promptTokens, cachedTokens: st.cachedTokens,
    prefillMs: st.prefillTokS ? (st.promptTokens - st.cachedTokens) / st.prefillTokS * 1000 : 0,
    firstTokenMs: (first ?? tEnd) - t0, // end to end, as the page sees it: from the call to the first piece
    generateFirstTokenMs: (first ?? tEnd) - tGen,
    decodeTokS: st.decodeTokS, tokens: st.generatedTokens, totalMs: tEnd - t0,
  });
  return { answer: g.text, tokens: g.tokens, promptIds: ids, sources, timings, dropped };
}

// The bytes of url, kept in OPFS under cacheName (so a reload reads them with no network).
async function cachedBytes(url, cacheName, onProgress) {
  let bytes = null;
  const r = await streamInto(url, { cache: cacheName, dest: (total) => (bytes = new Uint8Array(total)), onProgress });
  return { bytes, fromCache: r.fromCache === r.total };
}

// the OPFS name a URL is cached under (a flat name: OPFS file names cannot hold '/')
export const cacheName = (url) => 'ask-' + new URL(url, globalThis.location?.href).pathname.replace(/[^A-Za-z0-9._-]+/g, '_');

/**
 * Opens what asking needs: the index (URL), its texts (default index + '.texts'), the
 * embedding model and the LLM (GGUF URLs). cache (default true where there is OPFS): each
 * file kept in OPFS, so a reload works offline. onStatus(step, detail) reports each step.
 * An index without texts fails here by name.
 */
export async function openAsk({ index, texts, embedder, generator }, { cache = typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory,
  memoryBudget = '600MB', nCtx = 0, onStatus = () => {} } = {}) {
  const load = async (what, url) => {
    if (!cache) {
      const r = await fetch(url);
      if (!r.ok) throw new AskError(`${what} ${url}: HTTP ${r.status}`);
      return { bytes: new Uint8Array(await r.arrayBuffer()), fromCache: false };
    }
    return cachedBytes(url, cacheName(url), ({ loaded, total }) => onStatus(what, { loaded, total }));
  };
  try {
    parseSize(memoryBudget); // a bad budget is the caller's, not the first model's to report
  } catch (e) {
    throw new AskError(`memoryBudget: ${e.message}`);
  }
  const docs = { cached: {} };
  docs.close = async () => { await docs.embedder?.close(); await docs.generator?.close(); docs.index?.close(); };
  try {
    await openAll(docs, { index, texts, embedder, generator }, load, { cache, memoryBudget, nCtx, onStatus });
  } catch (e) {
    await docs.close(); // no Worker left running behind an error
    throw e;
  }
  docs.ask = (question, options) => ask(docs, question, options);
  return docs;
}

// e's message; a fetch that reached no server (Chromium "Failed to fetch", Firefox
// "NetworkError when attempting to fetch resource.", Safari "Load failed") says so, and a
// full storage (a QuotaError whose message is the browser's own) says what is full
function why(e) {
  const network = e?.name === 'TypeError' && /fetch|network|load failed/i.test(e.message);
  if (network) return `network error (${e.message}): the server could not be reached, and the file is not in this browser's storage yet`;
  if (e?.name === 'QuotaExceededError' && !/quota/i.test(e.message))
    return `no room left in this browser's storage (its quota for this site) to keep it for offline use: ${e.message}`;
  return e?.message ?? String(e);
}

async function openAll(docs, { index, texts, embedder, generator }, load, { cache, memoryBudget, nCtx, onStatus }) {
  const textsUrl = texts ?? `${index}.texts`;
  onStatus('index');
  let ib;
  try {
    ib = await load('index', index);
  } catch (e) {
    throw new AskError(`the index ${index} did not load: ${why(e)}`);
  }
  docs.index = await openIndex(ib.bytes, { store: 'memory' });
  docs.cached.index = ib.fromCache;
  onStatus('texts');
  let tb;
  try {
    tb = await load('texts', textsUrl);
  } catch (e) {
    throw new AskError(`${index} has no texts beside it (${textsUrl}: ${why(e)}), so it has no passages to answer from: `
      + 'build it with --texts PASSAGES.jsonl (or from a .jsonl of texts)');
  }
  docs.texts = await openTexts(tb.bytes, { name: textsUrl });
  docs.cached.texts = tb.fromCache;
  for (const [key, url, open] of [['embedder', embedder, openEmbedder], ['generator', generator, openGenerator]]) {
    onStatus(key);
    // the model's Worker reads it itself (from OPFS or the network into wasm memory): no copy in the page
    const source = cache ? { url: new URL(url, globalThis.location?.href).href, cache: cacheName(url) } : url;
    const onProgress = ({ loaded, total }) => onStatus(key, { loaded, total });
    try {
      docs[key] = await open(source, key === 'generator' ? { memoryBudget, nCtx, onProgress } : { memoryBudget, onProgress });
    } catch (e) {
      throw new AskError(`the ${key === 'generator' ? 'LLM' : 'embedding model'} ${url} did not load: ${why(e)}`);
    }
    const l = docs[key].loaded;
    docs.cached[key] = !!l && l.fromCache === l.total;
  }
  if (docs.embedder.dim != null && docs.embedder.dim !== docs.index.dim)
    throw new AskError(`the embedding model ${embedder} embeds ${docs.embedder.dim}-d vectors, the index holds ${docs.index.dim}-d`);
}
