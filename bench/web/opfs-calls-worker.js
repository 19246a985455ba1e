// The cost of one FileSystemSyncAccessHandle call, in a dedicated Worker (bench/web/opfs-calls.html):
// read sizes, the destination's kind (a plain ArrayBuffer, a view on WebAssembly memory, a
// SharedArrayBuffer), with and without {at}, getSize() (no I/O at all); and FileReaderSync
// over slices of a File snapshot (getFile()), the one other synchronous read a Worker has.
// Each form is timed over batches of calls at spread offsets, the forms interleaved; per-call
// median and p99 of the batch means, and the per-call p99 of single calls.
const now = () => performance.now();
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

async function handle(name) {
  const fh = await (await navigator.storage.getDirectory()).getFileHandle(name, { create: true });
  return fh.createSyncAccessHandle();
}

self.onmessage = async (e) => {
  const { bytes = 64 << 20, batches = 40, batch = 50 } = e.data;
  const out = { forms: {} };
  try {
    let h = await handle('qa-calls.bin');
    if (h.getSize() !== bytes) {
      const chunk = new Uint8Array(1 << 20);
      for (let i = 0; i < chunk.length; i++) chunk[i] = i * 31;
      for (let a = 0; a < bytes; a += chunk.length) h.write(chunk, { at: a });
      h.flush();
    }
    h.close();
    const H = await handle('qa-calls.bin'); // the default mode (modes: opfs-handles.html)
    const mem = new WebAssembly.Memory({ initial: 16 });
    const sab = typeof SharedArrayBuffer !== 'undefined' && self.crossOriginIsolated ? new SharedArrayBuffer(1 << 20) : null;
    const ab = new ArrayBuffer(1 << 20);
    const rows = Math.floor(bytes / 1536) - 64;
    let k = 0;
    const at = () => ((k++ * 7919) % rows) * 1536;
    const forms = {
      getSize: () => H.getSize(),
      read0_at: () => H.read(new Uint8Array(ab, 0, 0), { at: at() }),
      read1536_at: () => H.read(new Uint8Array(ab, 0, 1536), { at: at() }),
      read1536_nocursor: () => H.read(new Uint8Array(ab, 0, 1536)),
      read1536_at_wasm: () => H.read(new Uint8Array(mem.buffer, 4096, 1536), { at: at() }),
      read1536_at_sab: sab ? () => H.read(new Uint8Array(sab, 0, 1536), { at: at() }) : null,
      read12288_at: () => H.read(new Uint8Array(ab, 0, 12288), { at: at() }),
      read49152_at: () => H.read(new Uint8Array(ab, 0, 49152), { at: at() }),
      read196608_at: () => H.read(new Uint8Array(ab, 0, 196608), { at: at() }),
    };
    for (const name of Object.keys(forms)) if (!forms[name]) delete forms[name];
    const names = Object.keys(forms);
    const res = Object.fromEntries(names.map((n) => [n, { batchMeans: [], singles: [] }]));
    for (let b = 0; b < batches; b++) {
      for (let j = 0; j < names.length; j++) {
        const n = names[(j + b) % names.length], f = forms[n];
        const t0 = now();
        for (let i = 0; i < batch; i++) f();
        res[n].batchMeans.push((now() - t0) / batch * 1000);
        for (let i = 0; i < 10; i++) { const t = now(); f(); res[n].singles.push((now() - t) * 1000); }
      }
    }
    // the same file as a File snapshot, read synchronously by FileReaderSync (no access handle)
    H.close();
    const file = await (await (await navigator.storage.getDirectory()).getFileHandle('qa-calls.bin')).getFile();
    const frs = new FileReaderSync();
    const fforms = {
      frs_read1536: () => { const a = at(); return frs.readAsArrayBuffer(file.slice(a, a + 1536)); },
      frs_read49152: () => { const a = at(); return frs.readAsArrayBuffer(file.slice(a, a + 49152)); },
    };
    for (const n of Object.keys(fforms)) { names.push(n); forms[n] = fforms[n]; res[n] = { batchMeans: [], singles: [] }; }
    for (let b = 0; b < batches; b++) {
      for (const n of Object.keys(fforms)) {
        const f = forms[n], t0 = now();
        for (let i = 0; i < batch; i++) f();
        res[n].batchMeans.push((now() - t0) / batch * 1000);
        for (let i = 0; i < 10; i++) { const t = now(); f(); res[n].singles.push((now() - t) * 1000); }
      }
    }
    for (const n of names) {
      const r = res[n];
      out.forms[n] = { us_per_call_median: pct(r.batchMeans, 50), us_per_call_min: Math.min(...r.batchMeans),
        us_per_call_p90: pct(r.batchMeans, 90), single_p50_us: pct(r.singles, 50), single_p99_us: pct(r.singles, 99) };
    }
    out.crossOriginIsolated = self.crossOriginIsolated;
    self.postMessage(out);
  } catch (err) {
    self.postMessage({ error: String(err?.stack || err) });
  }
};
