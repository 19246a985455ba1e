// quantann in the browser (and Node): open a .qann index built by `quantann build` and
// search it with the same C kernel, compiled to wasm32.
//
//   import { openIndex } from './src/quantann.js';
//   const index = await openIndex('/data/passages.qann', { memoryBudget: '300MB' });
//   const { ids, distances, stats } = await index.search(query, { k: 10, ef: 64, rerank: 4 });
export { openIndex, FormatError, MemoryBudgetError } from './index.js';
export { parseSize, formatSize } from './sizes.js';
export { MemoryStore, SourceStore, HttpStore, IndexedDBStore, IDB_CHUNK_ROWS, importToIndexedDB } from './stores.js';
export { importToOPFS, OPFSStore, opfsImportState, opfsSupported } from './opfs.js';
export { persistentKind, importVectors, openVectors, deleteVectors } from './persistent.js';
export { streamInto, streamCacheState, dropStreamCache, QuotaError, MAX_CHUNK_BYTES } from './stream-load.js';
export { openIndexInWorker } from './index-worker-client.js';
export { openSource } from './source.js';
export { loadKernel } from './kernel.js';
export { Embedder, openEmbedder } from './embedder.js';
export { Generator, openGenerator } from './generator.js';
export { ModelError } from './model.js';
export { openAsk, ask, retrieve, buildPrompt, messages, AskError } from './ask.js';
export { openTexts } from './texts.js';
