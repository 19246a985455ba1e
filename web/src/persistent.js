// The persistent store for an index's vectors: OPFS by default (docs/BROWSER.md §5: 9× faster
// per query than IndexedDB, 7× faster to import), IndexedDB where the browser has no
// OPFS with sync access handles (detected once, by a Worker that looks for them).
//
//   const vt = index.header.tensors.get('vectors');
//   const { kind } = await importVectors('passages', url, { offset: vt.offset, count: index.count, dim: index.dim });
//   index.store = await openVectors('passages');   // OPFSStore or IndexedDBStore, as imported
import { importToOPFS, OPFSStore, opfsImportState, opfsSupported, WorkerRpc } from './opfs.js';
import { importToIndexedDB, IndexedDBStore } from './stores.js';

let detected = null;

/**
 * 'opfs' when this browser gives OPFS sync access handles to a Worker (what the OPFS store
 * reads with), else 'indexeddb'; {kind, reason} with `why: true`.
 */
export async function persistentKind({ why = false } = {}) {
  detected ??= (async () => {
    if (!opfsSupported()) return { kind: 'indexeddb', reason: 'no navigator.storage.getDirectory (OPFS)' };
    if (typeof Worker === 'undefined') return { kind: 'indexeddb', reason: 'no Worker' };
    const rpc = new WorkerRpc();
    try {
      return (await rpc.call('probe')) ? { kind: 'opfs', reason: 'OPFS with sync access handles in a Worker' }
        : { kind: 'indexeddb', reason: 'no createSyncAccessHandle in a Worker' };
    } catch (e) {
      return { kind: 'indexeddb', reason: `the OPFS Worker failed: ${e.message}` };
    } finally {
      rpc.terminate();
    }
  })();
  const d = await detected;
  return why ? d : d.kind;
}

const KINDS = ['opfs', 'indexeddb'];
function checkKind(kind) {
  if (kind != null && !KINDS.includes(kind)) throw new RangeError(`unknown persistent store ${JSON.stringify(kind)}: use 'opfs' or 'indexeddb'`);
}

/**
 * Imports `count` x `dim` float32 vectors at byte `offset` of `source` into the persistent
 * store `name` (kind: 'opfs' | 'indexeddb' overrides the detection). Resumable as both
 * imports are. Returns the import's result with `kind`.
 */
export async function importVectors(name, source, { kind, ...options } = {}) {
  checkKind(kind);
  kind ??= await persistentKind();
  const r = kind === 'opfs' ? await importToOPFS(name, source, options) : await importToIndexedDB(name, source, options);
  return { ...r, kind };
}

/** The store `name` was imported into: OPFS if it holds a complete import of it, else IndexedDB. */
export async function openVectors(name, { kind, ...options } = {}) {
  checkKind(kind);
  if (kind == null && await persistentKind() === 'opfs' && (await opfsImportState(name))?.complete) kind = 'opfs';
  return (kind ?? 'indexeddb') === 'opfs' ? OPFSStore.open(name, options) : IndexedDBStore.open(name, options);
}

/** Removes `name` from both stores. */
export async function deleteVectors(name) {
  if (await persistentKind() === 'opfs') await OPFSStore.delete(name);
  await IndexedDBStore.delete(name);
}
