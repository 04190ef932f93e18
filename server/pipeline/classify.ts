import * as tf from '@tensorflow/tfjs';
import { EMOTIONS } from '../../contract/emotions.ts';

export interface Normalisation {
  scale: number;
  offset: number;
}

/**
 * A batch of aligned grey crops (n x size x size values 0..255, concatenated) -> n x 7 softmax
 * probabilities in EMOTIONS order. Model input = pixel * scale + offset, from the model card.
 * With `mirrorAverage` each crop and its left-right mirror run in one batch and their
 * probabilities are averaged (FER2013 faces are symmetric enough that this removes noise).
 */
export function classifyCrops(
  model: tf.LayersModel,
  crops: Float32Array,
  count: number,
  size: number,
  normalisation: Normalisation,
  mirrorAverage = false,
): Float32Array {
  if (crops.length !== count * size * size) throw new Error(`expected ${count * size * size} values, got ${crops.length}`);
  if (count === 0) return new Float32Array(0);
  return tf.tidy(() => {
    const input = tf.tensor4d(crops, [count, size, size, 1]).mul(normalisation.scale).add(normalisation.offset);
    const output = model.predict(mirrorAverage ? tf.concat([input, tf.reverse(input, 2)]) : input) as tf.Tensor;
    if (output.shape[1] !== EMOTIONS.length) throw new Error(`the model outputs ${output.shape[1]} classes, expected ${EMOTIONS.length}`);
    if (!mirrorAverage) return output.dataSync() as Float32Array;
    const [direct, mirrored] = tf.split(output, 2);
    return tf.div(tf.add(direct!, mirrored!), 2).dataSync() as Float32Array;
  });
}
