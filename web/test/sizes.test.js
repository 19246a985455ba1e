// Size strings: the shared table (tests/data/sizes.json, also run by tests/test_sizes.py)
// against web/src/sizes.js, so that a budget admits the same bytes in the browser and Python.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { CONSTANTS } from '../src/constants.js';
import { formatSize, parseSize } from '../src/sizes.js';
import { parseSize as exported } from '../src/quantann.js';

const TABLE = JSON.parse(readFileSync(new URL('../../tests/data/sizes.json', import.meta.url)));

test('parse: every row of the shared table', () => {
  for (const c of TABLE.parse) {
    if ('error' in c) assert.throws(() => parseSize(c.in), (e) => e.message.includes(c.error), JSON.stringify(c));
    else assert.equal(parseSize(c.in), c.bytes, JSON.stringify(c));
  }
});

test('format: every row of the shared table', () => {
  for (const [n, text] of TABLE.format) assert.equal(formatSize(n), text, String(n));
});

test('units come from the constants; the public module exports this parser', () => {
  assert.equal(CONSTANTS.size_units.MB, 1e6);
  for (const [u, v] of Object.entries(CONSTANTS.size_units)) assert.equal(parseSize(`3${u.toLowerCase()}`), 3 * v);
  assert.equal(exported, parseSize);
  assert.throws(() => parseSize('300M'), /300MB.*300MiB/);
});
