/** Linear warm-up from 0.1x to the peak rate over `warmupSteps`, then cosine decay to `floor` x peak at step `totalSteps`. */
export function learningRateAt(step: number, totalSteps: number, peak: number, warmupSteps: number, floor = 0.02): number {
  if (step < warmupSteps) return peak * (0.1 + (0.9 * step) / warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return peak * (floor + ((1 - floor) * (1 + Math.cos(Math.PI * progress))) / 2);
}

/** Loss weight per class, (mean count / count)^power, normalised to a sample-weighted mean of 1. */
export function classWeightsFor(counts: number[], power: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = total / counts.length;
  const raw = counts.map((n) => (n > 0 ? (mean / n) ** power : 0));
  const weightedMean = raw.reduce((acc, w, i) => acc + w * counts[i]!, 0) / total;
  return raw.map((w) => w / weightedMean);
}
