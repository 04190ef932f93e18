/**
 * The worker-side stages on their own, in this thread: decode -> detect -> landmarks -> align ->
 * classify on a real photo with the real nets and emotion model; every stage leaves the tfjs
 * tensor count as it found it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { AppError } from '../contract/errors.ts';
import { DEFAULT_FACE_MODEL_DIR } from '../server/config.ts';
import { initBackend, tf } from '../contract/backend.ts';
import { EmotionModel } from '../server/inference/emotion-model.ts';
import { facePointsFrom68 } from '../contract/face-points.ts';
import { alignFace } from '../server/pipeline/align.ts';
import { decodeImage } from '../server/pipeline/decode.ts';
import { detectFaces } from '../server/pipeline/detect.ts';
import { loadFaceNets } from '../server/pipeline/faceapi.ts';
import { detectLandmarks } from '../server/pipeline/landmarks.ts';
import { matchFaces, readPhoto, referenceFaces, testModelDir } from './live-support.ts';

const limits = { maxImageBytes: 4 * 1024 * 1024, maxImagePixels: 4096 * 4096 };

describe('pipeline stages', { timeout: 600_000 }, () => {
  let model: EmotionModel;

  before(async () => {
    assert.equal(await initBackend('wasm'), 'wasm');
    await loadFaceNets(DEFAULT_FACE_MODEL_DIR);
    model = await EmotionModel.load(path.resolve(testModelDir));
  });

  it('decode refuses bad bytes and oversized images before decoding', async () => {
    await assert.rejects(decodeImage(new Uint8Array([1, 2, 3]), limits), (e: unknown) => e instanceof AppError && e.code === 'undecodable_image');
    await assert.rejects(decodeImage(readPhoto('group1.jpg'), { ...limits, maxImageBytes: 1000 }), (e: unknown) => e instanceof AppError && e.code === 'image_too_large');
    await assert.rejects(decodeImage(readPhoto('group1.jpg'), { ...limits, maxImagePixels: 1000 * 500 }), (e: unknown) => e instanceof AppError && e.code === 'image_too_large');
    const frame = await decodeImage(readPhoto('group1.jpg'), limits);
    assert.equal(frame.data.length, frame.width * frame.height * 3);
  });

  it('detect -> landmarks -> align -> classify on group4.jpg without leaking tensors', async () => {
    const frame = await decodeImage(readPhoto('group4.jpg'), limits);
    const tensorsBefore = tf.memory().numTensors;
    const image = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
    const detections = await detectFaces(image, { kind: 'ssd', inputSize: 0, minScore: 0.5 });
    const landmarks = await detectLandmarks(image, detections.map((d) => d.box));
    image.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore);

    assert.deepEqual(matchFaces(detections.map((d) => d.box), referenceFaces.photos['group4.jpg']!), { matched: 4, invented: 0 });
    landmarks.forEach((points, i) => {
      const box = detections[i]!.box;
      assert.equal(points.length, 68);
      // The centre of eyes and mouth (the points alignment uses) lies inside the face box.
      const inner = points.slice(36, 68);
      const cx = inner.reduce((a, p) => a + p[0], 0) / inner.length;
      const cy = inner.reduce((a, p) => a + p[1], 0) / inner.length;
      assert.ok(cx >= box.x && cx <= box.x + box.width && cy >= box.y && cy <= box.y + box.height, `face ${i}: landmarks centre outside its box`);
    });

    const size = model.inputSize;
    const crops = new Float32Array(landmarks.length * size * size);
    landmarks.forEach((points, i) => crops.set(alignFace(frame, facePointsFrom68(points), model.template), i * size * size));
    const probabilities = model.classify(crops, landmarks.length);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    assert.equal(probabilities.length, landmarks.length * 7);
    for (let i = 0; i < landmarks.length; i++) {
      const sum = probabilities.slice(i * 7, i * 7 + 7).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `face ${i} sums to ${sum}`);
    }
  });

  it('mirror averaging classifies a crop and its mirror image in one batch and averages them', async () => {
    const size = model.inputSize;
    const crops = new Float32Array(2 * size * size);
    for (let i = 0; i < crops.length; i++) crops[i] = (Math.sin(i * 0.05) * 0.5 + 0.5) * 255 * ((i % size) / size);
    const mirrored = new Float32Array(crops.length);
    for (let f = 0; f < 2; f++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) mirrored[f * size * size + y * size + x] = crops[f * size * size + y * size + (size - 1 - x)]!;
      }
    }
    const both = await EmotionModel.load(path.resolve(testModelDir), { mirrorAverage: 'on' });
    const single = await EmotionModel.load(path.resolve(testModelDir), { mirrorAverage: 'off' });
    try {
      assert.equal(both.mirrorAverage, true);
      assert.equal(single.mirrorAverage, false);
      const tensorsBefore = tf.memory().numTensors;
      const averaged = both.classify(crops, 2);
      assert.equal(tf.memory().numTensors, tensorsBefore);
      const direct = single.classify(crops, 2);
      const flipped = single.classify(mirrored, 2);
      averaged.forEach((p, i) => assert.ok(Math.abs(p - (direct[i]! + flipped[i]!) / 2) < 1e-5, `probability ${i}: ${p}`));
      assert.ok(direct.some((p, i) => Math.abs(p - flipped[i]!) > 1e-4), 'the test crops are not symmetric');
    } finally {
      both.dispose();
      single.dispose();
    }
  });
});
