// GGUF header reader: small, strict, bounds-checked. It trusts nothing it has not checked
// against the bytes it was given and the file's length, like quantann/gguf_file.py.
//
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv      x { string key | u32 type | value }
//   n_tensors x { string name | u32 n_dims | u64 dims[n_dims] (fastest first) | u32 type | u64 offset }
//   padding to general.alignment | tensor data (offsets relative to here)
//
// The header is parsed from a prefix of the file, so the browser can fetch it before it
// knows how big the in-memory part is. When the prefix ends inside the header, the error
// has `needMore: true` and the caller fetches a longer prefix.

export class FormatError extends Error {
  constructor(message, { needMore = false } = {}) {
    super(message);
    this.name = 'FormatError';
    this.needMore = needMore;
  }
}

// ggml tensor types: [name, bytes per element]
export const TENSOR_TYPES = { 0: ['F32', 4], 24: ['I8', 1], 25: ['I16', 2], 26: ['I32', 4], 27: ['I64', 8], 28: ['F64', 8] };
const SCALARS = { 0: [1, 'getUint8'], 1: [1, 'getInt8'], 2: [2, 'getUint16'], 3: [2, 'getInt16'],
  4: [4, 'getUint32'], 5: [4, 'getInt32'], 6: [4, 'getFloat32'], 7: [1, 'getUint8'],
  10: [8, 'getBigUint64'], 11: [8, 'getBigInt64'], 12: [8, 'getFloat64'] };
const STRING = 8, ARRAY = 9;

// bytes: Uint8Array holding the first bytes of the file; fileSize: the whole file's length.
export function parseGGUF(bytes, fileSize, name = 'index') {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const take = (n, what) => {
    if (n < 0 || pos + n > bytes.length) {
      const inFile = pos + n <= fileSize;
      throw new FormatError(inFile
        ? `${name}: header longer than the ${bytes.length} bytes read (${what})`
        : `${name}: truncated or corrupt: ${what} at byte ${pos} needs ${n} bytes, the file has ${fileSize}`,
      { needMore: inFile && bytes.length < fileSize });
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u32 = (what) => view.getUint32(take(4, what), true);
  const u64 = (what) => {
    const v = view.getBigUint64(take(8, what), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${name}: ${what} is impossibly large (${v})`);
    return Number(v);
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const string = (what) => {
    const n = u64(what);
    if (n > fileSize) throw new FormatError(`${name}: ${what}: string of ${n} bytes cannot fit in the file`);
    const at = take(n, what);
    try {
      return decoder.decode(bytes.subarray(at, at + n));
    } catch {
      throw new FormatError(`${name}: ${what} at byte ${at} is not UTF-8`);
    }
  };
  const scalar = (type, what) => {
    const [size, getter] = SCALARS[type];
    const v = view[getter](take(size, what), true);
    if (type === 7) return v !== 0;
    if (type === 10 || type === 11) {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) return v;
      return Number(v);
    }
    return v;
  };
  const value = (type, what) => {
    if (type in SCALARS) return scalar(type, what);
    if (type === STRING) return string(what);
    if (type === ARRAY) {
      const etype = u32(what);
      const count = u64(what);
      if (count > fileSize - pos) throw new FormatError(`${name}: ${what}: array of ${count} items cannot fit in the file`);
      if (etype === ARRAY || !(etype in SCALARS || etype === STRING))
        throw new FormatError(`${name}: ${what}: unsupported array item type ${etype}`);
      const out = new Array(count);
      for (let i = 0; i < count; i++) out[i] = value(etype, what);
      return out;
    }
    throw new FormatError(`${name}: ${what}: unknown value type ${type}`);
  };

  if (fileSize < 24) throw new FormatError(`${name}: too short to be a GGUF file (${fileSize} bytes)`);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'GGUF') throw new FormatError(`${name}: not a GGUF file (magic ${JSON.stringify(magic)})`);
  pos = 4;
  const version = u32('version');
  if (version !== 2 && version !== 3) throw new FormatError(`${name}: GGUF version ${version} is not supported (2 or 3)`);
  const nTensors = u64('tensor count');
  const nKv = u64('metadata count');
  if (nTensors > fileSize / 24 || nKv > fileSize / 12)
    throw new FormatError(`${name}: corrupt header: ${nTensors} tensors, ${nKv} keys cannot fit in ${fileSize} bytes`);
  const metadata = new Map();
  for (let i = 0; i < nKv; i++) {
    const key = string(`metadata key #${i}`);
    const type = u32(`type of ${key}`);
    metadata.set(key, value(type, `value of ${key}`));
  }
  const infos = [];
  for (let i = 0; i < nTensors; i++) {
    const tname = string(`tensor name #${i}`);
    const nd = u32(`dims of ${tname}`);
    if (nd < 1 || nd > 4) throw new FormatError(`${name}: tensor ${tname}: ${nd} dimensions`);
    const dims = [];
    for (let j = 0; j < nd; j++) dims.push(u64(`shape of ${tname}`));
    infos.push([tname, dims, u32(`type of ${tname}`), u64(`offset of ${tname}`)]);
  }
  const align = metadata.has('general.alignment') ? metadata.get('general.alignment') : 32;
  if (!Number.isInteger(align) || align <= 0 || (align & (align - 1)))
    throw new FormatError(`${name}: bad general.alignment ${align}`);
  const dataOffset = Math.ceil(pos / align) * align;
  const tensors = new Map();
  const spans = [];
  for (const [tname, dims, type, off] of infos) {
    if (!(type in TENSOR_TYPES)) throw new FormatError(`${name}: tensor ${tname}: unsupported type id ${type}`);
    let count = 1;
    for (const d of dims) {
      if (d > fileSize * 8) throw new FormatError(`${name}: tensor ${tname}: dimension ${d} is impossible`);
      count *= d;
    }
    const nbytes = count * TENSOR_TYPES[type][1];
    const start = dataOffset + off;
    if (off % align) throw new FormatError(`${name}: tensor ${tname}: offset ${off} not aligned to ${align}`);
    if (start + nbytes > fileSize)
      throw new FormatError(`${name}: truncated: tensor ${tname} needs bytes ${start}..${start + nbytes}, the file has ${fileSize}`);
    if (tensors.has(tname)) throw new FormatError(`${name}: tensor ${tname} appears twice`);
    tensors.set(tname, { name: tname, type: TENSOR_TYPES[type][0], shape: dims.slice().reverse(), offset: start, nbytes });
    spans.push([start, start + nbytes, tname]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++)
    if (spans[i][0] < spans[i - 1][1]) throw new FormatError(`${name}: tensors ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  return { version, metadata, tensors, dataOffset, headerBytes: pos };
}
