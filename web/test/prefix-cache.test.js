// The wasm Generator's KV prefix cache (src/generator.js): the prefix a prompt shares with
// the previous one is not evaluated again, and the logits that follow equal a cold
// evaluation's bit for bit (tests/test_prefix_cache.py holds the native one the same way).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Generator } from '../src/generator.js';
import { smollm2 } from '../testlib/models.js';

const smollm = smollm2();

// the prompt's last logits (maxTokens 0: nothing sampled, nothing appended)
async function lastLogits(g, ids) {
  const r = await g.generate(ids, { maxTokens: 0, temperature: 0 });
  return { logits: Float32Array.from(g.K.view(Float32Array, g.K.x.qa_wasm_decoder_logits(g.h), g.nVocab)), stats: r.stats };
}

function common(a, b) {
  let n = 0;
  while (n < Math.min(a.length, b.length) && a[n] === b[n]) n++;
  return n;
}

test('a shared prompt prefix is reused; logits equal a cold evaluation', { skip: smollm.skip, timeout: 600000 }, async () => {
  const g = await Generator.open(smollm.path, { nCtx: 512 });
  const chat = async (q) => g.tokenize(await g.renderChat([{ role: 'system', content: 'Answer from the passages below.' },
    { role: 'user', content: q }]), { addBos: false });
  const a = await chat('What is an eschar?'), b = await chat('What is a horsecar, and who drew it?');
  // b one token longer than a: only 2 are evaluated; b of n_batch + 1 tokens: no lone last row
  const long = Array.from({ length: 65 }, (_, i) => 100 + ((i * 7919) % 40000));
  const cases = [[a, b], [b, [...b, 42]], [long.slice(0, 40), long], [a, long]];
  for (const [first, second] of cases) {
    g.forget();
    const cold = await lastLogits(g, second);
    assert.equal(cold.stats.cachedTokens, 0);
    await lastLogits(g, first);
    const warm = await lastLogits(g, second);
    assert.equal(warm.stats.cachedTokens, Math.min(common(first, second), second.length - 2));
    assert.deepEqual(warm.logits, cold.logits);
  }
  // the generated tokens are not reused: only the previous prompt
  const out = await g.generate(a, { maxTokens: 4, temperature: 0 });
  const next = [...a, ...out.tokens, ...g.tokenize(' And?', { addBos: false })];
  assert.equal((await lastLogits(g, next)).stats.cachedTokens, a.length);
  g.prefixCache = false;
  assert.equal((await lastLogits(g, next)).stats.cachedTokens, 0);
  g.close();
});
