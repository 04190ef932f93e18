import { EMOTIONS } from '../contract/emotions.ts';
import type { Evaluation } from '../contract/model-card.ts';

/** Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows = truth). */
export function evaluatePredictions(usage: string, labels: ArrayLike<number>, predicted: ArrayLike<number>): Evaluation {
  const k = EMOTIONS.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]!;
    const p = predicted[i]!;
    confusion[t]![p]!++;
    if (t === p) correct++;
  }
  const perClass: Evaluation['perClass'] = {};
  let f1Sum = 0;
  EMOTIONS.forEach((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predictedCount = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = predictedCount ? tp / predictedCount : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[label] = { precision, recall, f1, support };
    f1Sum += f1;
  });
  return { usage, n: labels.length, accuracy: labels.length ? correct / labels.length : 0, macroF1: f1Sum / k, perClass, confusion };
}

/** Index of the largest of each row of a [n, k] probability matrix. */
export function argmaxRows(probs: Float32Array, k = EMOTIONS.length): Int32Array {
  const n = probs.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + best]!) best = c;
    out[i] = best;
  }
  return out;
}

export function formatEvaluation(e: Evaluation): string {
  const pct = (v: number) => (100 * v).toFixed(1).padStart(5);
  const lines = [
    `${e.usage}: n=${e.n} accuracy=${pct(e.accuracy)}% macro-F1=${pct(e.macroF1)}%`,
    `class      precision recall   f1  support`,
    ...EMOTIONS.map((label) => {
      const s = e.perClass[label]!;
      return `${label.padEnd(10)} ${pct(s.precision)}%  ${pct(s.recall)}% ${pct(s.f1)}% ${String(s.support).padStart(6)}`;
    }),
    `confusion (rows = true, columns = predicted: ${EMOTIONS.map((l) => l.slice(0, 3)).join(' ')})`,
    ...e.confusion.map((row, i) => `${EMOTIONS[i]!.slice(0, 3)} ${row.map((v) => String(v).padStart(5)).join('')}`),
  ];
  return lines.join('\n');
}
