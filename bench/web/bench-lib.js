// Helpers shared by the measurement pages (bench.html, idb-profile.html, opfs-profile.html),
// so that every report times the one-record-per-vector baseline the same way.

export const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
export const med = (a) => pct(a, 50);
export const idbReq = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
export const txDone = (tx) => new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });

// The import baseline: one IndexedDB record per vector, 1000 puts per relaxed transaction
// (as the chunked import commits). Returns seconds for `count` vectors of `dim` floats.
export async function perVectorWrites(bytes, dim, count, dbName = 'quantann-bench-pervector') {
  await idbReq(indexedDB.deleteDatabase(dbName));
  const open = indexedDB.open(dbName, 1);
  open.onupgradeneeded = () => open.result.createObjectStore('v');
  const db = await idbReq(open);
  const t0 = performance.now();
  for (let s = 0; s < count; s += 1000) {
    const tx = db.transaction('v', 'readwrite', { durability: 'relaxed' });
    const os = tx.objectStore('v');
    for (let i = s; i < Math.min(count, s + 1000); i++) os.put(bytes.slice(i * dim * 4, (i + 1) * dim * 4).buffer, i);
    await txDone(tx);
  }
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  await idbReq(indexedDB.deleteDatabase(dbName));
  return seconds;
}
