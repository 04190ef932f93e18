import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../contract/backend.ts';
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

for (const backend of ['cpu', 'wasm'] as const) test(`the fused training batch norm matches moments + batchNorm on ${backend}: output, gradients, statistics, no leaks`, async () => {
  await initBackend(backend);
  const { batchNormTraining } = await import('../training/kernels/batchnorm-training.ts');
  const x = tf.randomNormal([3, 5, 4, 6], 2, 3, 'float32', 11);
  const scale = tf.randomUniform([6], 0.5, 1.5, 'float32', 12) as tf.Tensor1D;
  const offset = tf.randomNormal([6], 0, 1, 'float32', 13) as tf.Tensor1D;
  const r = tf.randomUniform([3, 5, 4, 6], -1, 1, 'float32', 14);
  const reference = (xi: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
    const { mean, variance } = tf.moments(xi, [0, 1, 2]);
    return tf.batchNorm(xi, mean, variance, o, s, 1e-3);
  };
  const fused = (xi: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => batchNormTraining(xi, s as tf.Tensor1D, o as tf.Tensor1D, 1e-3).y;
  const run = (f: typeof reference) =>
    tf.tidy(() => {
      const y = f(x, scale, offset).dataSync() as Float32Array;
      const grads = tf.grads(((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), r))) as (...t: tf.Tensor[]) => tf.Tensor)([x, scale, offset]);
      return { y, grads: grads.map((g) => g.dataSync() as Float32Array) };
    });
  const want = run(reference);
  const before = tf.memory().numTensors;
  const got = run(fused);
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.ok(maxAbsDiff(want.y, got.y) < 1e-4, `output differs by ${maxAbsDiff(want.y, got.y)}`);
  want.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, got.grads[i]!) < 1e-4, `gradient ${i} differs by ${maxAbsDiff(g, got.grads[i]!)}`));
  // The gradient is not the plain dy * gamma * rstd: the mean and variance terms matter here.
  assert.ok(maxAbsDiff(got.grads[0]!, tf.tidy(() => tf.mul(r, tf.mul(scale, tf.rsqrt(tf.add(tf.moments(x, [0, 1, 2]).variance, 1e-3)))).dataSync() as Float32Array)) > 1e-2);
  const stats = tf.tidy(() => {
    const { mean, variance } = batchNormTraining(x, scale, offset, 1e-3);
    const m = tf.moments(x, [0, 1, 2]);
    return [maxAbsDiff(mean.dataSync() as Float32Array, m.mean.dataSync() as Float32Array), maxAbsDiff(variance.dataSync() as Float32Array, m.variance.dataSync() as Float32Array)];
  });
  assert.ok(stats[0]! < 1e-5 && stats[1]! < 1e-4, `statistics differ by ${stats}`);
  tf.dispose([x, scale, offset, r]);
});

test('a model switched to the fused batch norm trains and serves like the stock layers', async () => {
  await initBackend('wasm');
  registerConvGradientKernels('wasm');
  const { useFusedBatchNormTraining } = await import('../training/kernels/batchnorm-training.ts');
  const build = () => {
    const input = tf.input({ shape: [8, 8, 2] });
    let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 21 }) }).apply(input) as tf.SymbolicTensor;
    h = tf.layers.batchNormalization({ momentum: 0.9 }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 22 }) }).apply(h) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  };
  const stock = build();
  const fused = build();
  assert.equal(useFusedBatchNormTraining(fused), 1);
  const x = tf.randomNormal([5, 8, 8, 2], 0, 1, 'float32', 23);
  const r = tf.randomUniform([5, 3], -1, 1, 'float32', 24);
  const step = (m: tf.LayersModel) =>
    tf.tidy(() => {
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(m.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar, vars);
      return vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
    });
  const want = step(stock);
  const got = step(fused);
  want.forEach((g, i) => assert.ok(maxAbsDiff(g, got[i]!) < 1e-4, `weight ${i}: gradient differs by ${maxAbsDiff(g, got[i]!)}`));
  // Moving statistics got the same update; inference (which uses them) gives the same output.
  const moving = (m: tf.LayersModel) => m.weights.filter((w) => w.name.includes('moving')).map((w) => w.read().dataSync() as Float32Array);
  moving(stock).forEach((v, i) => assert.ok(maxAbsDiff(v, moving(fused)[i]!) < 1e-5, `moving statistic ${i}`));
  const infer = (m: tf.LayersModel) => tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array);
  assert.ok(maxAbsDiff(infer(stock), infer(fused)) < 1e-4);
  // It still serialises as the stock layer, so the saved model loads anywhere.
  const bnConfig = (m: tf.LayersModel) => {
    const layer = m.layers[2]!;
    const { name: _name, ...config } = layer.getConfig();
    return { className: layer.getClassName(), config };
  };
  assert.deepEqual(bnConfig(fused), bnConfig(stock));
  assert.equal(bnConfig(fused).className, 'BatchNormalization');
  tf.dispose([x, r]);
  stock.dispose();
  fused.dispose();
});

test('the wasm 2x2 MaxPoolGrad matches the cpu backend, ties and odd sides included', async () => {
  const { registerMaxPoolGradKernel } = await import('../training/kernels/max-pool-grad.ts');
  // Rounded values make ties common; a 7x5 input leaves an unpooled row and column.
  const shapes: [number, number, number, number][] = [
    [2, 8, 8, 3],
    [3, 7, 5, 4],
    [1, 3, 3, 2],
  ];
  const grads = (shape: [number, number, number, number], seed: number) =>
    tf.tidy(() => {
      const x = tf.round(tf.mul(tf.randomUniform(shape, -2, 2, 'float32', seed), 2));
      const upstream = tf.randomNormal([shape[0], Math.floor(shape[1] / 2), Math.floor(shape[2] / 2), shape[3]], 0, 1, 'float32', seed + 1);
      return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'), upstream)))(x).dataSync() as Float32Array;
    });
  await initBackend('cpu');
  const reference = shapes.map((s, i) => grads(s, 40 + i));
  await initBackend('wasm');
  registerMaxPoolGradKernel('wasm');
  shapes.forEach((s, i) => {
    const before = tf.memory().numTensors;
    assert.deepEqual(Array.from(grads(s, 40 + i)), Array.from(reference[i]!), `shape ${s.join('x')}`);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  });
});
