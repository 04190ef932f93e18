import * as tf from '@tensorflow/tfjs';
import { FER_PIXELS, FER_SIDE } from './data/fer2013.ts';

export interface Normalisation {
  scale: number;
  offset: number;
}

/** Faces start..end of a packed 48x48 byte array as a normalised [n,48,48,1] tensor, optionally mirrored. */
export function facesToTensor(images: Uint8Array, start: number, end: number, normalisation: Normalisation, mirror = false): tf.Tensor4D {
  const n = end - start;
  const data = new Float32Array(n * FER_PIXELS);
  const { scale, offset } = normalisation;
  for (let i = 0; i < n; i++) {
    const src = (start + i) * FER_PIXELS;
    const dst = i * FER_PIXELS;
    for (let y = 0; y < FER_SIDE; y++) {
      for (let x = 0; x < FER_SIDE; x++) {
        const sx = mirror ? FER_SIDE - 1 - x : x;
        data[dst + y * FER_SIDE + x] = images[src + y * FER_SIDE + sx]! * scale + offset;
      }
    }
  }
  return tf.tensor4d(data, [n, FER_SIDE, FER_SIDE, 1]);
}

/** Softmax outputs for faces start..end in chunks; with `tta` the mirrored face's outputs are averaged in. */
export function predictFaces(model: tf.LayersModel, images: Uint8Array, start: number, end: number, normalisation: Normalisation, tta: boolean, chunk = 128): Float32Array {
  const classes = (model.outputs[0]!.shape[1] as number) ?? 7;
  const out = new Float32Array((end - start) * classes);
  for (let s = start; s < end; s += chunk) {
    const e = Math.min(end, s + chunk);
    const probs = tf.tidy(() => {
      const p = model.predict(facesToTensor(images, s, e, normalisation)) as tf.Tensor2D;
      if (!tta) return p.dataSync();
      const q = model.predict(facesToTensor(images, s, e, normalisation, true)) as tf.Tensor2D;
      return tf.div(tf.add(p, q), 2).dataSync();
    });
    out.set(probs, (s - start) * classes);
  }
  return out;
}
