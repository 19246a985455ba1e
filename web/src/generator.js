// Text generation with a decoder LLM (GGUF, llama family) in the model kernel: the same C
// as quantann.Generator natively (kernel/model/arch/llama.c, sample.c, tokenizer/):
//
//   const gen = await openGenerator('/models/SmolLM2-135M-Instruct.Q4_1.gguf', { memoryBudget: '300MB' });
//   const r = await gen.generate('What is the capital of France?', {
//     chat: true, maxTokens: 64, temperature: 0, onToken: (piece) => out.append(piece) });
//   r.text, r.tokens, r.stats  // {promptTokens, generatedTokens, firstTokenMs, prefillTokS, decodeTokS, stopReason}
//
// Weights, KV cache and scratch are sized by the kernel from the GGUF header and checked
// against memoryBudget and wasm32's 4 GiB before any weight is fetched. In a page the
// model runs in a Worker (src/model-worker.js); under Node or {worker: false} here.
import { checkMemory, loadModelBytes, loadModelKernel, ModelError, plan, textIn, withSource } from './model.js';
import { callWorker, useWorker } from './model-client.js';
import { renderChat } from './model-template.js';
import { parseSize } from './sizes.js';

const N_BATCH = 64; // prompt tokens per forward pass (quantann/generate.py DEFAULT_N_BATCH)
const now = () => performance.now();

// quantann/generate.py's defaults and checks
const DEFAULTS = { maxTokens: 128, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.0 };
function checkOptions(o) {
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 0) throw new RangeError(`maxTokens must be an integer >= 0, got ${o.maxTokens}`);
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new RangeError(`temperature must be >= 0, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0) throw new RangeError(`topK must be an integer >= 0 (0 = all), got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  if (!(o.minP >= 0 && o.minP <= 1)) throw new RangeError(`minP must be in [0, 1], got ${o.minP}`);
  if (!(o.repeatPenalty > 0)) throw new RangeError(`repeatPenalty must be > 0, got ${o.repeatPenalty}`);
  if (o.seed != null && !(Number.isSafeInteger(o.seed) && o.seed >= 0)) throw new RangeError(`seed must be a whole number >= 0, got ${o.seed}`);
}

export class Generator {
  // options: memoryBudget (bytes or '300MB'), nCtx (default min(2048, the model's)),
  // threads (1: the wasm pool runs inline), onProgress({loaded, total}), wasm
  static async open(source, { memoryBudget, nCtx = 0, threads = 1, onProgress, wasm } = {}) {
    if (threads !== 1) throw new RangeError(`threads: only 1 is supported in wasm (got ${threads})`);
    if (!Number.isInteger(nCtx) || nCtx < 0) throw new RangeError(`nCtx must be a positive integer, got ${nCtx}`);
    parseSize(memoryBudget); // a bad budget fails before anything is read
    const K = await loadModelKernel(wasm);
    return withSource(source, async (src) => {
      const [kv, scratch, arena, ctx] = await plan(src, K, 'qa_wasm_decoder_plan', [nCtx, N_BATCH], 6);
      const memory = { weights: src.size, 'KV cache': kv, scratch, vocabulary: arena };
      checkMemory(src.name, memory, memoryBudget, K);
      const buf = await loadModelBytes(src, K, { onProgress });
      const h = K.x.qa_wasm_decoder_open(buf, src.size, ctx, N_BATCH);
      if (!h) {
        const msg = K.error();
        K.free(buf);
        throw new ModelError(`${src.name}: ${msg}`);
      }
      const g = new Generator();
      const out = K.alloc(Float64Array, 8);
      K.x.qa_wasm_decoder_info(h, out);
      const [nVocab, nCtxUsed, bos, eos, eot, addBos] = K.view(Float64Array, out, 8);
      const tptr = K.x.qa_wasm_decoder_chat_template(h, out), tlen = K.view(Uint32Array, out, 1)[0];
      Object.assign(g, { K, h, buf, name: src.name, memory, nVocab, nCtx: nCtxUsed, bos, eos, eot, addBos: !!addBos, loaded: src.loaded ?? null });
      g.prefixCache = true; // reuse the KV of the previous prompt's common prefix
      g.kvPrompt = []; // the prompt whose KV the cache holds from position 0
      g.chatTemplate = tptr ? new TextDecoder().decode(K.view(Uint8Array, tptr, tlen)) : null;
      g.bosToken = g.piece(bos, out);
      g.eosToken = g.piece(eos, out);
      K.free(out);
      return g;
    });
  }

  info() {
    return { nVocab: this.nVocab, nCtx: this.nCtx, memory: this.memory, chatTemplate: this.chatTemplate,
      bosToken: this.bosToken, eosToken: this.eosToken, loaded: this.loaded, wasmMemoryBytes: this.K.memoryBytes,
      wasmBuild: this.K.build };
  }

  piece(id, lenPtr) {
    const p = this.K.x.qa_wasm_decoder_piece(this.h, id, lenPtr);
    return p ? new TextDecoder().decode(this.K.view(Uint8Array, p, this.K.view(Uint32Array, lenPtr, 1)[0])) : '';
  }

  // Token ids of text (control tokens written in it are parsed); BOS first as the file says.
  tokenize(text, { addBos = this.addBos } = {}) {
    const K = this.K, { ptr, len } = textIn(K, text);
    const n = K.x.qa_wasm_decoder_tokenize(this.h, ptr, len, addBos ? 1 : 0);
    K.free(ptr);
    if (n < 0) throw new ModelError(`${this.name}: ${K.error()}`);
    return Array.from(K.view(Int32Array, K.x.qa_wasm_decoder_ids(this.h), n));
  }

  // The text of token ids, as native Generator.detokenize gives it (no control tokens).
  detokenize(ids) {
    const K = this.K, p = K.copyIn(Int32Array, Array.from(ids, Number));
    const n = K.x.qa_wasm_decoder_detokenize(this.h, p, ids.length);
    K.free(p);
    if (n < 0) throw new ModelError(`${this.name}: ${K.error()}`);
    return new TextDecoder().decode(K.view(Uint8Array, K.x.qa_wasm_decoder_text(this.h), n));
  }

  // The prompt as the model's chat template renders it (messages or one user message).
  renderChat(messages) {
    return renderChat(this.chatTemplate, messages, { bosToken: this.bosToken, eosToken: this.eosToken });
  }

  // prompt: text, token ids, or with chat: true a user message / [{role, content}]. onToken(piece, id)
  // is called as each token's text is complete. temperature 0 is greedy.
  async generate(prompt, options = {}) {
    if (!this.h) throw new ModelError('the generator is closed');
    const o = { ...DEFAULTS, ...options };
    checkOptions(o);
    const t0 = now();
    let ids;
    if (o.chat) ids = this.tokenize(await this.renderChat(prompt), { addBos: false });
    else if (typeof prompt === 'string') ids = this.tokenize(prompt);
    else ids = Array.from(prompt, Number);
    if (!ids.length) throw new RangeError('the prompt is empty');
    if (ids.length + Math.max(o.maxTokens, 1) > this.nCtx)
      throw new RangeError(`the prompt has ${ids.length} tokens; with maxTokens=${o.maxTokens} it exceeds the context of ${this.nCtx} tokens (open with a larger nCtx or shorten it)`);
    return this._run(ids, o, t0);
  }

  // The next prompt is evaluated from its first token.
  forget() {
    this.kvPrompt = [];
  }

  // Positions of ids the cache can keep: the prefix shared with the previous prompt (not its
  // generated tokens, evaluated alone), leaving >= 2 to evaluate, so the logits equal a cold
  // evaluation's bit for bit (quantann/generate.py Generator._prefill).
  _reusable(ids) {
    if (!this.prefixCache || ids.length < 2) return 0;
    const old = this.kvPrompt, limit = Math.min(old.length, ids.length - 2);
    let keep = 0;
    while (keep < limit && old[keep] === ids[keep]) keep++;
    return keep;
  }

  _run(ids, o, t0) {
    const K = this.K, x = K.x, h = this.h;
    const seed = o.seed ?? Math.floor(Math.random() * 2 ** 53);
    const keep = this._reusable(ids);
    this.kvPrompt = [];
    const p = K.copyIn(Int32Array, ids);
    const rc = x.qa_wasm_decoder_prefill(h, p, ids.length, keep, Math.floor(seed / 2 ** 32), seed % 2 ** 32);
    K.free(p);
    if (rc) throw new ModelError(`${this.name}: ${K.error()}`);
    this.kvPrompt = ids.slice();
    const stats = { promptTokens: ids.length, cachedTokens: keep, generatedTokens: 0, firstTokenMs: 0, prefillTokS: 0, decodeTokS: 0, stopReason: 'length' };
    stats.prefillTokS = (ids.length - keep) / Math.max((now() - t0) / 1000, 1e-9);
    const tokens = [], dec = new TextDecoder();
    let text = '', tFirst = null;
    const emit = (n) => {
      if (n <= 0) return;
      const piece = dec.decode(K.view(Uint8Array, x.qa_wasm_decoder_text(h), n), { stream: true });
      text += piece;
      if (piece) o.onToken?.(piece, tokens[tokens.length - 1]);
    };
    for (let i = 0; i < o.maxTokens; i++) {
      const tok = x.qa_wasm_decoder_sample(h, o.temperature, o.topK, o.topP, o.minP, o.repeatPenalty);
      if (tok < 0) throw new ModelError(`${this.name}: ${K.error()}`);
      if (tFirst === null) {
        tFirst = now();
        stats.firstTokenMs = tFirst - t0;
      }
      if (x.qa_wasm_decoder_is_eog(h, tok)) {
        stats.stopReason = 'eos';
        break;
      }
      tokens.push(tok);
      emit(x.qa_wasm_decoder_decode(h, tok));
      if (i + 1 < o.maxTokens && x.qa_wasm_decoder_step(h, tok)) throw new ModelError(`${this.name}: ${K.error()}`);
    }
    emit(x.qa_wasm_decoder_decode(h, -1));
    const tail = dec.decode();
    if (tail) { text += tail; o.onToken?.(tail, tokens[tokens.length - 1]); }
    stats.generatedTokens = tokens.length;
    if (tokens.length > 1) stats.decodeTokS = (tokens.length - 1) / Math.max((now() - tFirst) / 1000, 1e-9);
    return { text, tokens, promptTokens: ids, stats };
  }

  close() {
    if (!this.h) return;
    this.K.x.qa_wasm_decoder_free(this.h);
    this.K.free(this.buf);
    this.h = 0;
  }
}

// A generator: in a Worker in a page (options.worker, default true there), else here.
export async function openGenerator(source, options = {}) {
  const { worker, onProgress, ...rest } = options;
  if (!useWorker(worker)) return Generator.open(source, options);
  const w = await callWorker('generator', source, rest, onProgress);
  return {
    ...w.info, inWorker: true,
    tokenize: (text, opts = {}) => w.call('tokenize', { text, opts }),
    detokenize: (ids) => w.call('detokenize', { ids: Array.from(ids, Number) }),
    forget: () => w.call('forget', {}),
    renderChat: (messages) => renderChat(w.info.chatTemplate, messages, { bosToken: w.info.bosToken, eosToken: w.info.eosToken }),
    generate: (prompt, { onToken, ...opts } = {}) =>
      w.call('generate', { prompt, options: opts }, onToken && ((e) => onToken(e.piece, e.id))),
    close: () => w.close(),
  };
}
