import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../contract/backend.ts';
import { recalibrateBatchNorm } from '../training/model/bn-calibration.ts';

test('recalibrateBatchNorm sets the moving statistics to the mean batch statistics and restores momentum', async () => {
  await initBackend('wasm');
  const input = tf.input({ shape: [4, 4, 2] });
  const bn = tf.layers.batchNormalization({ momentum: 0.99 });
  const model = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
  // Stale statistics, as a fast-moving training run leaves them.
  const [gamma, beta] = [bn.getWeights()[0]!, bn.getWeights()[1]!];
  bn.setWeights([gamma, beta, tf.tensor1d([50, -50]), tf.tensor1d([1e4, 1e-4])]);

  const batches = [0, 1, 2].map((k) => tf.randomNormal([8, 4, 4, 2], k - 1, 1 + k, 'float32', 11 + k) as tf.Tensor4D);
  const expected = batches.map((b) => tf.moments(b, [0, 1, 2]));
  const meanOf = (pick: (m: { mean: tf.Tensor; variance: tf.Tensor }) => tf.Tensor) =>
    Array.from(tf.tidy(() => tf.div(tf.addN(expected.map(pick)), expected.length)).dataSync());
  const wantMean = meanOf((m) => m.mean);
  const wantVariance = meanOf((m) => m.variance);
  const before = tf.memory().numTensors;

  const used = recalibrateBatchNorm(model, batches.map((b) => b.clone()));

  assert.equal(used, 3);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked (the batches are disposed)');
  const [, , movingMean, movingVariance] = bn.getWeights().map((w) => Array.from(w.dataSync()));
  movingMean!.forEach((v, i) => assert.ok(Math.abs(v - wantMean[i]!) < 1e-4, `mean ${v} vs ${wantMean[i]}`));
  movingVariance!.forEach((v, i) => assert.ok(Math.abs(v - wantVariance[i]!) < 1e-3 * wantVariance[i]!, `variance ${v} vs ${wantVariance[i]}`));
  assert.equal((bn as unknown as { momentum: number }).momentum, 0.99);
  model.dispose();
});
