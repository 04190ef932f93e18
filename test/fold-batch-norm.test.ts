/**
 * Folding batch norms into convolutions for inference: the shipped model keeps its answers on real
 * aligned faces (within float rounding) with fewer layers; chains that cannot be folded are left
 * as they are; no tensor is leaked.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend, tf } from '../contract/backend.ts';
import { facePointsFrom68 } from '../contract/face-points.ts';
import { directoryIO, loadLayersModelFromDir } from '../contract/model-io.ts';
import { DEFAULT_FACE_MODEL_DIR } from '../server/config.ts';
import { foldBatchNorm } from '../server/inference/fold-batch-norm.ts';
import { readModelCard } from '../contract/model-card.ts';
import { alignFace } from '../server/pipeline/align.ts';
import { decodeImage } from '../server/pipeline/decode.ts';
import { detectFaces } from '../server/pipeline/detect.ts';
import { loadFaceNets } from '../server/pipeline/faceapi.ts';
import { detectLandmarks } from '../server/pipeline/landmarks.ts';
import { readPhoto, testModelDir } from './live-support.ts';

const limits = { maxImageBytes: 4 * 1024 * 1024, maxImagePixels: 4096 * 4096 };

/** Artifacts of a model built here, as a saved model would give them. */
async function artifactsOf(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

const classNames = (artifacts: tf.io.ModelArtifacts): string[] =>
  (artifacts.modelTopology as { config: { layers: { class_name: string }[] } }).config.layers.map((l) => l.class_name);

describe('batch-norm folding', { timeout: 300_000 }, () => {
  before(async () => {
    await initBackend('wasm');
    await loadFaceNets(DEFAULT_FACE_MODEL_DIR);
  });

  it('folds every conv -> BN -> ReLU of the shipped model and keeps its answers on real faces', async () => {
    const dir = path.resolve(testModelDir);
    const card = await readModelCard(dir);
    const original = await loadLayersModelFromDir(dir);
    const tensorsBefore = tf.memory().numTensors;
    const { artifacts, folded } = await foldBatchNorm(await directoryIO(dir).load!());
    assert.equal(tf.memory().numTensors, tensorsBefore, 'folding leaked tensors');
    const convs = classNames(await directoryIO(dir).load!()).filter((c) => c === 'Conv2D').length;
    assert.ok(convs > 0);
    assert.equal(folded, convs, 'every conv has its BN folded');
    assert.ok(!classNames(artifacts).includes('BatchNormalization'));
    assert.ok(!classNames(artifacts).includes('Activation'), 'the ReLUs went into the convs');
    const fast = await tf.loadLayersModel(tf.io.fromMemory(artifacts));

    // Real faces: up to 4 faces of group4.jpg and of group1.jpg, aligned as the server aligns them.
    const size = card.input.height;
    const crops: Float32Array[] = [];
    for (const photo of ['group4.jpg', 'group1.jpg']) {
      const frame = await decodeImage(readPhoto(photo), limits);
      const image = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
      const detections = (await detectFaces(image, { kind: 'ssd', inputSize: 0, minScore: 0.5 })).slice(0, 4);
      const landmarks = await detectLandmarks(image, detections.map((d) => d.box));
      image.dispose();
      for (const points of landmarks) crops.push(alignFace(frame, facePointsFrom68(points), card.alignment));
    }
    assert.ok(crops.length >= 6, `${crops.length} faces`);
    const batch = new Float32Array(crops.length * size * size);
    crops.forEach((c, i) => batch.set(c, i * size * size));
    const { scale, offset } = card.input.normalisation;
    const [before, after] = tf.tidy(() => {
      const input = tf.tensor4d(batch, [crops.length, size, size, 1]).mul(scale).add(offset);
      return [(original.predict(input) as tf.Tensor).dataSync(), (fast.predict(input) as tf.Tensor).dataSync()];
    });
    let worst = 0;
    before!.forEach((p, i) => (worst = Math.max(worst, Math.abs(p - after![i]!))));
    assert.ok(worst < 1e-4, `largest probability difference ${worst}`);
    for (let f = 0; f < crops.length; f++) {
      const argmax = (v: ArrayLike<number>) => Array.from(v).slice(f * 7, f * 7 + 7).reduce((b, p, i, a) => (p > a[b]! ? i : b), 0);
      assert.equal(argmax(after!), argmax(before!), `face ${f} changed label`);
    }
    original.dispose();
    fast.dispose();
  });

  it('leaves chains it cannot fold as they are', async () => {
    // BN after the activation, and a conv read by two layers: neither may be folded.
    const input = tf.input({ shape: [8, 8, 1] });
    const a = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    const aBn = tf.layers.batchNormalization().apply(a) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(aBn) as tf.SymbolicTensor;
    const bBn = tf.layers.batchNormalization().apply(b) as tf.SymbolicTensor;
    const joined = tf.layers.add().apply([b, bBn]) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: joined });
    const artifacts = await artifactsOf(model);
    const tensorsBefore = tf.memory().numTensors;
    const result = await foldBatchNorm(artifacts);
    assert.equal(result.folded, 0);
    assert.equal(result.artifacts, artifacts);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    model.dispose();
  });

  it('folds a conv without bias and a BN without scale, with the same outputs', async () => {
    const input = tf.input({ shape: [6, 6, 2] });
    const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
    const bn = tf.layers.batchNormalization({ scale: false, epsilon: 0.01 }).apply(conv) as tf.SymbolicTensor;
    const out = tf.layers.activation({ activation: 'relu' }).apply(bn) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    // Non-trivial statistics, as after training.
    const bnLayer = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
    bnLayer.setWeights([tf.tensor1d([0.5, -1, 2]), tf.tensor1d([0.1, 0.2, -0.3]), tf.tensor1d([0.5, 2, 0.25])]);
    const { artifacts, folded } = await foldBatchNorm(await artifactsOf(model));
    assert.equal(folded, 1);
    assert.deepEqual(classNames(artifacts), ['InputLayer', 'Conv2D']);
    const fast = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 7);
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    const actual = (fast.predict(x) as tf.Tensor).dataSync();
    expected.forEach((v, i) => assert.ok(Math.abs(v - actual[i]!) < 1e-5, `value ${i}: ${v} vs ${actual[i]}`));
    x.dispose();
    model.dispose();
    fast.dispose();
  });
});
