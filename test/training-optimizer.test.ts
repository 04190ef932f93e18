import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../contract/backend.ts';
import { HostAdamax } from '../training/host-adamax.ts';

const shapes = [[3, 3, 2, 4], [4], [5, 3]];

// Seeds start at 1: tfjs treats a seed of 0 as no seed.
function randomGrads(step: number): Float32Array[] {
  return shapes.map((s, v) => tf.tidy(() => tf.randomNormal(s, 0, 1 + v, 'float32', 100 * step + v + 1).dataSync() as Float32Array));
}

function variables(): tf.Variable[] {
  return shapes.map((s, v) => tf.variable(tf.randomNormal(s, 0, 1, 'float32', 7 + v), true, `w${v}_${Math.random()}`));
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!) / Math.max(1e-3, Math.abs(b[i]!)));
  return max;
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`HostAdamax follows tf.train.adamax step for step on ${backend}, learning-rate changes included`, async () => {
    await initBackend(backend);
    const reference = variables();
    const host = variables();
    const tfjs = tf.train.adamax(0.01);
    const adamax = new HostAdamax(host);
    for (let step = 0; step < 12; step++) {
      const lr = 0.01 * (1 - step / 24);
      const grads = randomGrads(step);
      (tfjs as unknown as { learningRate: number }).learningRate = lr;
      tf.tidy(() => tfjs.applyGradients(Object.fromEntries(reference.map((v, i) => [v.name, tf.tensor(grads[i]!, v.shape)])) as Parameters<typeof tfjs.applyGradients>[0]));
      const before = tf.memory().numTensors;
      adamax.apply(grads, lr);
      assert.equal(tf.memory().numTensors, before, 'HostAdamax leaked tensors');
    }
    host.forEach((v, i) => {
      const diff = maxRelDiff(v.dataSync() as Float32Array, reference[i]!.dataSync() as Float32Array);
      assert.ok(diff < 1e-4, `variable ${i} differs from tf.train.adamax by ${diff}`);
    });
    // The weights moved: a test of an optimizer that did nothing would pass the comparison above only if tfjs did nothing too.
    assert.ok(maxRelDiff(host[0]!.dataSync() as Float32Array, tf.randomNormal(shapes[0]!, 0, 1, 'float32', 7).dataSync() as Float32Array) > 1e-3);
    tfjs.dispose();
    tf.dispose([...reference, ...host]);
  });
}

test('HostAdamax restored from its slots continues exactly like the uninterrupted run', async () => {
  await initBackend('wasm');
  const straight = variables();
  const resumed = variables();
  const a = new HostAdamax(straight);
  const b = new HostAdamax(resumed);
  for (let step = 0; step < 5; step++) {
    a.apply(randomGrads(step), 0.01);
    b.apply(randomGrads(step), 0.01);
  }
  const saved = b.slots();
  const weights = resumed.map((v) => (v.dataSync() as Float32Array).slice());
  assert.equal(saved.iterations, 5);
  assert.deepEqual(saved.firstMoment.map((s) => s.name), resumed.map((v) => `${v.name}/m`));
  // A fresh optimizer on freshly initialised variables, then the checkpoint put back.
  const restoredVars = variables();
  restoredVars.forEach((v, i) => v.assign(tf.tensor(weights[i]!, v.shape)));
  const c = new HostAdamax(restoredVars);
  c.restore(saved.iterations, saved.firstMoment.map((s) => s.data), saved.infNorm.map((s) => s.data));
  for (let step = 5; step < 9; step++) {
    a.apply(randomGrads(step), 0.01);
    c.apply(randomGrads(step), 0.01);
  }
  straight.forEach((v, i) => assert.deepEqual(Array.from(restoredVars[i]!.dataSync()), Array.from(v.dataSync()), `variable ${i}`));
  assert.throws(() => c.restore(1, saved.firstMoment.slice(1).map((s) => s.data), saved.infNorm.map((s) => s.data)), /does not match/);
  assert.throws(() => c.apply(randomGrads(0).slice(1), 0.01), /expected 3 gradients/);
  tf.dispose([...straight, ...resumed, ...restoredVars]);
});
