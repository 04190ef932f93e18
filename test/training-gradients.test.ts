import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../server/inference/backend.ts';
import { registerConvGradientKernels } from '../training/kernels/conv-grads.ts';

type Case = { name: string; x: number[]; w: number[]; strides: number; pad: 'same' | 'valid' };

const cases: Case[] = [
  { name: '3x3 same, stride 1', x: [2, 9, 9, 3], w: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { name: '3x3 valid, stride 1', x: [3, 8, 7, 2], w: [3, 3, 2, 5], strides: 1, pad: 'valid' },
  { name: '5x5 same, stride 1', x: [2, 10, 10, 2], w: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { name: '3x3 same, stride 2 (dW identity, shipped dx)', x: [2, 9, 9, 3], w: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { name: '1x1 valid, stride 1', x: [4, 6, 6, 8], w: [1, 1, 8, 2], strides: 1, pad: 'valid' },
];

function gradients(c: Case, seed: number): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = tf.randomNormal(c.x as [number, number, number, number], 0, 1, 'float32', seed) as tf.Tensor4D;
    const w = tf.randomNormal(c.w as [number, number, number, number], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
    const f = (xi: tf.Tensor4D, wi: tf.Tensor4D) => {
      const y = tf.conv2d(xi, wi, c.strides, c.pad);
      // A fixed, non-uniform weighting of the output so every gradient entry is exercised.
      const r = tf.randomUniform(y.shape, -1, 1, 'float32', seed + 2);
      return tf.sum(tf.mul(y, r));
    };
    const [dx, dw] = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w]);
    return { dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

test('wasm conv2d gradients match the cpu backend', async () => {
  await initBackend('cpu');
  const reference = cases.map((c, i) => gradients(c, 10 * i + 1));
  await initBackend('wasm');
  registerConvGradientKernels('wasm');
  cases.forEach((c, i) => {
    const before = tf.memory().numTensors;
    const got = gradients(c, 10 * i + 1);
    assert.equal(tf.memory().numTensors, before, `${c.name}: tensors leaked`);
    const dxErr = maxAbsDiff(got.dx, reference[i]!.dx);
    const dwErr = maxAbsDiff(got.dw, reference[i]!.dw);
    assert.ok(dxErr < 1e-3, `${c.name}: dx differs by ${dxErr}`);
    assert.ok(dwErr < 1e-3, `${c.name}: dW differs by ${dwErr}`);
  });
});

test('the gradient matches a finite difference of the loss on wasm', async () => {
  await initBackend('wasm');
  registerConvGradientKernels('wasm');
  const x = tf.randomNormal([1, 5, 5, 2], 0, 1, 'float32', 7) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 2, 2], 0, 1, 'float32', 8) as tf.Tensor4D;
  const loss = (wi: tf.Tensor4D) => tf.sum(tf.square(tf.conv2d(x, wi, 1, 'same')));
  const analytic = tf.grad(loss as (t: tf.Tensor) => tf.Tensor)(w).dataSync();
  const base = w.dataSync();
  const eps = 1e-2;
  for (const index of [0, 5, 17, 35]) {
    const plus = Float32Array.from(base);
    const minus = Float32Array.from(base);
    plus[index]! += eps;
    minus[index]! -= eps;
    const lp = loss(tf.tensor4d(plus, w.shape)).dataSync()[0]!;
    const lm = loss(tf.tensor4d(minus, w.shape)).dataSync()[0]!;
    const numeric = (lp - lm) / (2 * eps);
    assert.ok(Math.abs(numeric - analytic[index]!) < 1e-2 * Math.max(1, Math.abs(numeric)), `w[${index}]: ${numeric} vs ${analytic[index]}`);
  }
  tf.dispose([x, w]);
});

test('the broadcast FusedBatchNorm gradient equals tfjs-core one', async () => {
  await initBackend('wasm');
  const { registerBatchNormGradient } = await import('../training/kernels/batchnorm-grad.ts');
  const x = tf.randomNormal([4, 6, 6, 5], 0, 1, 'float32', 3);
  const scale = tf.randomUniform([5], 0.5, 1.5, 'float32', 4);
  const offset = tf.randomNormal([5], 0, 1, 'float32', 5);
  const r = tf.randomUniform([4, 6, 6, 5], -1, 1, 'float32', 6);
  const loss = (xi: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
    const { mean, variance } = tf.moments(xi, [0, 1, 2]);
    return tf.sum(tf.mul(tf.batchNorm(xi, mean, variance, o, s, 1e-3), r));
  };
  const grads = () => tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)([x, scale, offset]).map((g) => g.dataSync() as Float32Array);
  const before = grads();
  registerBatchNormGradient();
  const after = grads();
  before.forEach((g, i) => assert.ok(maxAbsDiff(g, after[i]!) < 1e-4, `gradient ${i} differs by ${maxAbsDiff(g, after[i]!)}`));
  tf.dispose([x, scale, offset, r]);
});
