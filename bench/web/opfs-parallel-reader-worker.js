// One part of a split OPFS import, read in a Worker of its own (PartReader in
// opfs-parallel-reader.js is the other side; the probe opfs-parallel-worker.js): its sync access handle (Firefox gives one per file, and each call is
// a thread hop: several readers' hops overlap). Started with {file, ctrl, out, dim, cap};
// answers {ok, size} once the file is open, then serves requests through the shared
// buffers, blocked in Atomics.wait between them (ctrl: [request seq, done seq, status,
// pieces], the pieces (first slot, end slot), the part-local row of every slot; request
// seq -1: close the file and stop).
import { syncHandle } from '../../web/src/opfs-sync.js';

const HEAD = 8;

// Set up by whoever started it, or ({port}) over a MessagePort: a reader started by the page
// and handed to the index's Worker (a nested Worker's parent blocked in Atomics.wait can
// stall it in Firefox).
self.onmessage = (e) => {
  if (e.data.port) e.data.port.onmessage = (m) => setup(m.data, e.data.port);
  else setup(e.data, self);
};

async function setup({ file, ctrl, out, dim, cap }, reply) {
  let h;
  try {
    h = await syncHandle(file, false, 'read-only');
  } catch (err) {
    reply.postMessage({ ok: false, error: err.message, name: err.name });
    return;
  }
  reply.postMessage({ ok: true, size: h.getSize() });
  serve(h, new Int32Array(ctrl), new Uint8Array(out), dim * 4, HEAD + 2 * cap);
  self.close();
}

function serve(h, c, out, rb, R) {
  const at = { at: 0 };
  let seen = 0, scratch = new Uint8Array(0);
  for (;;) {
    Atomics.wait(c, 0, seen);
    const seq = Atomics.load(c, 0);
    if (seq === seen) continue;
    if (seq < 0) {
      h.close();
      Atomics.store(c, 1, -1);
      Atomics.notify(c, 1);
      return;
    }
    seen = seq;
    let status = 0;
    try {
      for (let k = 0, n = c[3]; k < n && !status; k++) {
        const s = c[HEAD + 2 * k], e = c[HEAD + 2 * k + 1], a = c[R + s], span = c[R + e - 1] - a + 1;
        at.at = a * rb;
        if (span === e - s) { // every row wanted: straight to its slots
          const v = out.subarray(s * rb, e * rb);
          if (h.read(v, at) !== v.length) status = 1;
          continue;
        }
        if (scratch.length < span * rb) scratch = new Uint8Array(span * rb);
        const v = scratch.subarray(0, span * rb);
        if (h.read(v, at) !== v.length) { status = 1; continue; }
        for (let r = s; r < e; r++) {
          const o = (c[R + r] - a) * rb;
          out.set(v.subarray(o, o + rb), r * rb);
        }
      }
    } catch {
      status = 2;
    }
    c[2] = status;
    Atomics.store(c, 1, seq);
    Atomics.notify(c, 1);
  }
}
