// The prompt prefill the model benchmarks time (tools/model-cpu-bench.js, tools/prefill-ab.js):
// a fixed ~280-token English text (SmolLM2's tokenizer), about the size of ask.html's prompts
// (330-380 tokens), evaluated from its first token (the prefix cache forgotten) with one
// greedy token sampled; timed by this process's CPU time.
export const PREFILL_TEXT = 'The lighthouse keeper climbed the spiral stairs every evening, counting the steps as his ' +
  'father had taught him, and lit the lamp that guided the fishing boats home through fog, storms and the long ' +
  'winter nights. ';

export const PREFILL_PROMPT = PREFILL_TEXT.repeat(7);

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

// CPU ms of one cold prefill of prompt (+ the first token) by Generator g
export async function prefillCpuMs(g, prompt = PREFILL_PROMPT) {
  g.forget();
  const c0 = cpu();
  await g.generate(prompt, { maxTokens: 1, temperature: 0 });
  return cpu() - c0;
}
