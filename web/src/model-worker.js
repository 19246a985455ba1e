// One model (an Embedder or a Generator) in a dedicated module Worker, so that a forward
// pass never blocks the page (src/model-client.js is the page's side).
//   open     {kind, source, options} -> the model's info     (events: load progress)
//   embed    {texts}                 -> Float32Array[]
//   generate {prompt, options}       -> the result           (events: {piece, id} per token)
//   tokenize {text, opts}            -> token ids;  detokenize {ids} -> text
//   forget   {}                      (a Generator's next prompt evaluated from its first token)
//   close    {}
import { Embedder } from './embedder.js';
import { Generator } from './generator.js';
import { serve } from './worker-rpc.js';

let model = null;

serve({
  async open({ kind, source, options }, emit) {
    const M = kind === 'embedder' ? Embedder : Generator;
    model = await M.open(source, { ...options, onProgress: emit });
    return model.info();
  },
  async embed({ texts }) {
    const out = model.embedSync(texts);
    return [out, (Array.isArray(out) ? out : [out]).map((v) => v.buffer)];
  },
  generate({ prompt, options }, emit) {
    return model.generate(prompt, { ...options, onToken: (piece, id) => emit({ piece, id }) });
  },
  tokenize({ text, opts }) { return [model.tokenize(text, opts), []]; }, // an array result is [result, transfer]
  detokenize({ ids }) { return model.detokenize(ids); },
  forget() { model.forget(); return true; },
  close() { model?.close(); model = null; return true; },
});
