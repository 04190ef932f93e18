import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { readModelCard } from '../server/inference/model-card.ts';
import { DEFAULT_DATA } from '../training/paths.ts';
import { evaluateModel } from '../training/evaluate.ts';

const modelDir = path.resolve(import.meta.dirname, '../models/emotion');

// Regression guard: the shipped model, scored again on PublicTest from ../shared, must stay within
// 3 points of the accuracy its card reports (a broken loader, normalisation or quantisation shows here).
test('the shipped model scores within 3 points of its card on PublicTest', async () => {
  const card = await readModelCard(modelDir);
  const evaluation = await evaluateModel({ data: DEFAULT_DATA, usage: 'PublicTest', model: modelDir, tta: false, backend: 'wasm', skipBad: false });
  assert.equal(evaluation.n, card.evaluation.n);
  assert.ok(
    evaluation.accuracy >= card.evaluation.accuracy - 0.03,
    `accuracy ${(100 * evaluation.accuracy).toFixed(2)}% is more than 3 points under the card's ${(100 * card.evaluation.accuracy).toFixed(2)}%`,
  );
  assert.ok(evaluation.accuracy >= 0.5, `accuracy ${evaluation.accuracy} is far from a usable model`);
  // every class is predicted sometimes: no model stuck on one label
  for (const [label, scores] of Object.entries(evaluation.perClass)) {
    if (label !== 'disgust') assert.ok(scores.recall > 0.1, `${label} recall ${scores.recall}`);
  }
});
