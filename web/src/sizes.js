// Memory sizes: reading budgets like '300MB' and printing byte counts, by the rule of
// quantann/budget.py (tests/data/sizes.json holds both runtimes to the same answers):
// units from quantann/constants.json `size_units` (web/src/constants.js), matched without
// regard to case; 'MB' is 10^6 bytes, 'MiB' 2^20; a bare 'K', 'M', 'G' or 'T' is refused as
// ambiguous. Fractions are exact (decimal, in BigInt) and a fractional byte is dropped.
// Sizes print in decimal units with two decimals, rounded half up: '52.00 MB'.
import { CONSTANTS } from './constants.js';

const UNITS = new Map(Object.entries(CONSTANTS.size_units).map(([u, v]) => [u.toLowerCase(), BigInt(v)]));
const AMBIGUOUS = new Set([...UNITS.keys()].filter((u) => u.length > 1).map((u) => u[0]).filter((u) => !UNITS.has(u)));
const PRINTED = Object.entries(CONSTANTS.size_units).filter(([u, v]) => v > 1 && !u.toLowerCase().endsWith('ib'))
  .map(([u, v]) => [BigInt(v), u]).sort((a, b) => (a[0] < b[0] ? 1 : -1));
const NUMBER = /^[ \t]*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*([A-Za-z]*)[ \t]*$/;
export const MAX_BYTES = Number.MAX_SAFE_INTEGER; // 2^53 - 1: exact in both runtimes
const CHOICES = 'use e.g. 300MB (10^6 bytes each), 512MiB (2^20 bytes each) or a number of bytes';
const repr = (s) => JSON.stringify(s);
const grouped = (v) => v.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// Bytes from a positive integer or a string like '300MB', '1.5GiB', '4096'; null/undefined stay.
export function parseSize(s) {
  if (s == null) return s;
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s <= 0 || s > MAX_BYTES) throw new RangeError(`memory size must be a positive whole number of bytes, got ${s}`);
    return s;
  }
  if (typeof s !== 'string') throw new RangeError(`cannot read memory size ${String(s)}: ${CHOICES}`);
  const m = NUMBER.exec(s), unit = m ? m[2].toLowerCase() : '';
  if (m && AMBIGUOUS.has(unit)) {
    const dec = unit.toUpperCase() + 'B', bin = unit.toUpperCase() + 'iB';
    throw new RangeError(`ambiguous memory size ${repr(s)}: write ${m[1]}${dec} (${grouped(UNITS.get(dec.toLowerCase()))} bytes each) or ${m[1]}${bin} (${grouped(UNITS.get(bin.toLowerCase()))} bytes each)`);
  }
  if (!m || (unit && !UNITS.has(unit))) throw new RangeError(`cannot read memory size ${repr(s)}: ${CHOICES}`);
  const [whole, frac = ''] = m[1].split('.');
  const v = BigInt(whole + frac || '0') * (UNITS.get(unit) ?? 1n) / 10n ** BigInt(frac.length);
  if (v <= 0n) throw new RangeError(`memory size must be at least one byte, got ${repr(s)}`);
  if (v > BigInt(MAX_BYTES)) throw new RangeError(`memory size ${repr(s)} is too large (over 2^53 bytes)`);
  return Number(v);
}

// '512 B', '1.50 KB', '52.00 MB': decimal units, two decimals, half up.
export function formatSize(n) {
  let b = BigInt(Math.trunc(Number(n)));
  if (b < 0n) return '-' + formatSize(-Number(b));
  for (const [f, unit] of PRINTED) {
    if (b >= f) {
      const h = (b * 100n + f / 2n) / f;
      return `${h / 100n}.${String(h % 100n).padStart(2, '0')} ${unit}`;
    }
  }
  return `${b} B`;
}
