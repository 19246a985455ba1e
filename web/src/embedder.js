// Text embeddings in the model kernel (kernel/model: WordPiece + the BERT encoder + pooling,
// the same C as quantann.model.Embedder natively):
//
//   const emb = await openEmbedder('/models/minilm-q8_0.gguf', { memoryBudget: '200MB' });
//   const vectors = await emb.embed(['a query', 'another']); // Float32Array[] (n_embd each)
//
// In a page the model runs in a Worker (src/model-worker.js) so the page never blocks;
// under Node, or with {worker: false}, in the calling thread.
import { checkMemory, loadModelBytes, loadModelKernel, ModelError, plan, textIn, withSource } from './model.js';
import { parseSize } from './sizes.js';
import { callWorker, useWorker } from './model-client.js';

const WARM_UP = 'warm up the model'; // 6 tokens with [CLS] and [SEP]: a 2x4 tile and 2 rows left over

export class Embedder {
  // options: memoryBudget (bytes or '200MB'), maxTokens (truncation; default the model's),
  // onProgress({loaded, total}), wasm (the module's URL or bytes)
  static async open(source, { memoryBudget, maxTokens = 0, onProgress, wasm } = {}) {
    parseSize(memoryBudget); // a bad budget fails before anything is read
    const K = await loadModelKernel(wasm);
    return withSource(source, async (src) => {
      const [arena, scratch, dim, tokens] = await plan(src, K, 'qa_wasm_embedder_plan', [maxTokens], 4);
      const memory = { weights: src.size, vocabulary: arena, scratch };
      checkMemory(src.name, memory, memoryBudget, K);
      const buf = await loadModelBytes(src, K, { onProgress });
      const h = K.x.qa_wasm_embedder_open(buf, src.size, maxTokens);
      if (!h) {
        const msg = K.error();
        K.free(buf);
        throw new ModelError(`${src.name}: ${msg}`);
      }
      const e = new Embedder();
      Object.assign(e, { K, h, buf, dim, maxTokens: tokens, memory, name: src.name, loaded: src.loaded ?? null });
      e.out = K.alloc(Float32Array, dim);
      // One short text through every op (tiles, leftover rows, attention, GELU) at open: the
      // engines start wasm on a baseline tier and optimize the functions that ran hot, so the
      // first query no longer pays that (Chromium: 4-5x a warm query).
      e.embedSync(WARM_UP);
      return e;
    });
  }

  info() { return { dim: this.dim, maxTokens: this.maxTokens, memory: this.memory, loaded: this.loaded, wasmBuild: this.K.build }; }

  // Float32Array per text (pooled and, as the file says, L2-normalised).
  async embed(texts) { return this.embedSync(texts); }

  embedSync(texts) {
    if (!this.h) throw new ModelError('the embedder is closed');
    const one = typeof texts === 'string';
    const list = one ? [texts] : Array.from(texts);
    const K = this.K, out = [];
    for (const t of list) {
      const { ptr, len } = textIn(K, t);
      const n = K.x.qa_wasm_embed(this.h, ptr, len, this.out);
      K.free(ptr);
      if (n < 0) throw new ModelError(`${this.name}: ${K.error()}`);
      out.push(K.view(Float32Array, this.out, this.dim).slice());
    }
    return one ? out[0] : out;
  }

  close() {
    if (!this.h) return;
    this.K.x.qa_wasm_embedder_free(this.h);
    this.K.free(this.out);
    this.K.free(this.buf);
    this.h = 0;
  }
}

// An embedder: in a Worker in a page (options.worker, default true there), else here.
export async function openEmbedder(source, options = {}) {
  const { worker, onProgress, ...rest } = options;
  if (!useWorker(worker)) return Embedder.open(source, options);
  const w = await callWorker('embedder', source, rest, onProgress);
  return {
    dim: w.info.dim, maxTokens: w.info.maxTokens, memory: w.info.memory, loaded: w.info.loaded, wasmBuild: w.info.wasmBuild, inWorker: true,
    embed: (texts) => w.call('embed', { texts }),
    close: () => w.close(),
  };
}
