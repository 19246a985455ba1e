// Byte sources: where the .qann file comes from. Each has `name`, `size` and
// `read(offset, length) -> Promise<Uint8Array>`.
//   string / URL   http(s) URL read with Range requests (or a local path under Node)
//   Blob / File    a file the user picked, read by slices
//   ArrayBuffer / Uint8Array   the whole file in memory

export async function openSource(source) {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return new BytesSource(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new BlobSource(source);
  if (source && typeof source.read === 'function' && 'size' in source) return source;
  const s = String(source);
  if (/^https?:/i.test(s) || (typeof location !== 'undefined' && !/^file:/i.test(s)))
    return HttpSource.open(new URL(s, typeof location !== 'undefined' ? location.href : undefined).href);
  return NodeFileSource.open(s);
}

export class BytesSource {
  constructor(bytes, name = 'index') {
    this.bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    this.size = this.bytes.length;
    this.name = name;
  }
  async read(offset, length) { return this.bytes.subarray(offset, Math.min(this.size, offset + length)); }
}

export class BlobSource {
  constructor(blob) {
    this.blob = blob;
    this.size = blob.size;
    this.name = blob.name || 'index';
  }
  async read(offset, length) { return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer()); }
}

export class NodeFileSource {
  static async open(path) {
    const fs = await import('node:fs/promises');
    const p = path.startsWith('file:') ? new URL(path) : path;
    const fh = await fs.open(p, 'r');
    const s = new NodeFileSource();
    s.fh = fh;
    s.size = (await fh.stat()).size;
    s.name = String(path);
    return s;
  }
  async read(offset, length) {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(out, got, n - got, offset + got);
      if (!bytesRead) break;
      got += bytesRead;
    }
    return out.subarray(0, got);
  }
  async close() { await this.fh.close(); }
}

// One Range request per read; the file size comes from the first response's Content-Range.
export class HttpSource {
  static async open(url) {
    const s = new HttpSource();
    s.url = url;
    s.name = url;
    s.size = Infinity;
    s.first = await s.read(0, 65536);
    return s;
  }
  async read(offset, length) {
    if (this.first && offset + length <= this.first.length) return this.first.subarray(offset, offset + length);
    if (length <= 0) return new Uint8Array(0);
    const r = await fetch(this.url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (r.status === 416) {
      throw new RangeError(`${this.url}: range ${offset}+${length} is past the end of the file`);
    }
    if (r.status !== 206 && r.status !== 200) throw new Error(`${this.url}: HTTP ${r.status}`);
    let body = new Uint8Array(await r.arrayBuffer());
    if (r.status === 200) { // the server ignored Range: the body is the whole file
      this.size = body.length;
      return body.subarray(offset, offset + length);
    }
    const cr = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(r.headers.get('Content-Range') || '');
    if (!cr || Number(cr[1]) !== offset) throw new Error(`${this.url}: bad Content-Range ${r.headers.get('Content-Range')}`);
    if (cr[3] !== '*') this.size = Number(cr[3]);
    return body;
  }
}
