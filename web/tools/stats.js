// Small statistics shared by the benchmark tools.

export const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// the value at fraction q of the sorted values (q = 0.1: the 10th percentile)
export const quantile = (a, q) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(q * a.length))];

// 95% percentile bootstrap interval of the median of xs (a seeded LCG: the same draws each run)
export function bootstrapMedianCI(xs, draws = 4000) {
  let s = 12345;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const meds = Array.from({ length: draws }, () => med(Array.from(xs, () => xs[Math.floor(rnd() * xs.length)])))
    .sort((a, b) => a - b);
  return [meds[Math.floor(0.025 * draws)], meds[Math.ceil(0.975 * draws) - 1]];
}
