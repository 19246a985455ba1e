// The request loop of quantann's Workers: {id, op, args} -> {id, ok: true, result} or
// {id, ok: false, error, name}. An op may return [result, transferList]. An op's second
// argument, emit(event), posts {id, event} while it runs (progress, streamed tokens).
export function serve(ops) {
  self.onmessage = async (e) => {
    const { id, op, args } = e.data;
    try {
      const r = await ops[op](args, (event) => self.postMessage({ id, event }));
      const [result, transfer] = Array.isArray(r) ? r : [r, []];
      self.postMessage({ id, ok: true, result }, transfer);
    } catch (err) {
      self.postMessage({ id, ok: false, error: String(err?.message || err), name: err?.name });
    }
  };
}
