/**
 * Statistics of interleaved A/B rounds: each round measures every variant once, and a variant is
 * judged by its per-round ratios to the reference (the same round's conditions on both sides),
 * not by the ratio of two medians taken at different moments.
 */

/** The `q` quantile (0..1) of `xs`, linear between ranks. */
export function quantile (xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const at = (s.length - 1) * q
  const lo = Math.floor(at)
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo)
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5)

/** A deterministic PRNG (mulberry32), so that a report's intervals are reproducible from its data. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Median of paired ratios with its interquartile range and a 95 % percentile-bootstrap interval. */
export interface PairedSummary {
  readonly median: number
  readonly q1: number
  readonly q3: number
  readonly ciLow: number
  readonly ciHigh: number
  readonly n: number
}

/** Summarises per-round ratios; the interval resamples the rounds 2,000 times. */
export function summarise (ratios: readonly number[]): PairedSummary {
  const next = random(ratios.length * 7919 + 17)
  const medians: number[] = []
  for (let b = 0; b < 2000; b++) {
    const sample = Array.from({ length: ratios.length }, () => ratios[Math.floor(next() * ratios.length)])
    medians.push(median(sample))
  }
  return {
    median: median(ratios),
    q1: quantile(ratios, 0.25),
    q3: quantile(ratios, 0.75),
    ciLow: quantile(medians, 0.025),
    ciHigh: quantile(medians, 0.975),
    n: ratios.length
  }
}

/** `0.987 [0.95..1.02] (95 % CI 0.96..1.01)`. */
export const formatPaired = (s: PairedSummary): string =>
  `${s.median.toFixed(3)} [${s.q1.toFixed(3)}..${s.q3.toFixed(3)}] (CI ${s.ciLow.toFixed(3)}..${s.ciHigh.toFixed(3)})`
