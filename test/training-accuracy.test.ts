import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { readModelCard } from '../contract/model-card.ts';
import { DEFAULT_DATA } from '../training/paths.ts';
import { evaluateModel } from '../training/evaluate.ts';

const modelDir = path.resolve(import.meta.dirname, '../models/emotion');

// Regression guard: the shipped model, scored again on PublicTest from ../shared, must stay within
// 3 points of the accuracy its card reports (a broken loader, normalisation or quantisation shows here).
// It scores the way the card says the model runs (single faces or mirror-averaged).
test('the shipped model scores within 3 points of its card on PublicTest', async () => {
  const card = await readModelCard(modelDir);
  const evaluation = await evaluateModel({ data: DEFAULT_DATA, usage: 'PublicTest', model: modelDir, backend: 'wasm', skipBad: false });
  assert.equal(evaluation.n, card.evaluation.n);
  assert.ok(
    evaluation.accuracy >= card.evaluation.accuracy - 0.03,
    `accuracy ${(100 * evaluation.accuracy).toFixed(2)}% is more than 3 points under the card's ${(100 * card.evaluation.accuracy).toFixed(2)}%`,
  );
  // not stuck on one label (users' most common complaint about emotion models)
  const recalled = Object.values(evaluation.perClass).filter((scores) => scores.recall > 0.2).length;
  assert.ok(recalled >= 4, `only ${recalled} classes have recall over 20%`);
});
