/**
 * VGG16 topology on 48x48 grey faces: five blocks of 3x3 same-padded convolutions (2, 2, 3, 3, 3
 * layers; 64, 128, 256, 512, 512 filters at width 1.0), each block closed by 2x2 max-pooling, then the
 * dense head 256 -> 256 -> dropout 0.5 -> 128 -> 7 softmax on the 512*width features the base gives.
 * Layer names follow Keras' VGG16 (block1_conv1 ...) so ImageNet "notop" weights map onto them.
 */
import * as tf from '@tensorflow/tfjs';

/** Convolutions and filters (at width 1.0) of each block. */
export const VGG16_BLOCKS = [
  { convs: 2, filters: 64 },
  { convs: 2, filters: 128 },
  { convs: 3, filters: 256 },
  { convs: 3, filters: 512 },
  { convs: 3, filters: 512 },
] as const;

export const HEAD_UNITS = [256, 256, 128] as const;
export const HEAD_DROPOUT = 0.5;
export const INPUT_SIDE = 48;
export const NUM_CLASSES = 7;

export interface VggOptions {
  width: number;
  batchNorm: boolean;
  seed: number;
}

export function filtersAt(width: number, filters: number): number {
  return Math.max(4, Math.round(filters * width));
}

export function buildVgg16(options: VggOptions): tf.LayersModel {
  const { width, batchNorm } = options;
  let seed = options.seed;
  const nextInit = () => tf.initializers.heNormal({ seed: seed++ });
  const input = tf.input({ shape: [INPUT_SIDE, INPUT_SIDE, 1], name: 'face' });
  let x: tf.SymbolicTensor = input;
  VGG16_BLOCKS.forEach((block, b) => {
    for (let c = 0; c < block.convs; c++) {
      const name = `block${b + 1}_conv${c + 1}`;
      x = tf.layers
        .conv2d({
          name,
          filters: filtersAt(width, block.filters),
          kernelSize: 3,
          padding: 'same',
          activation: batchNorm ? 'linear' : 'relu',
          kernelInitializer: nextInit(),
        })
        .apply(x) as tf.SymbolicTensor;
      if (batchNorm) {
        x = tf.layers.batchNormalization({ name: `${name}_bn`, momentum: 0.99 }).apply(x) as tf.SymbolicTensor;
        x = tf.layers.activation({ name: `${name}_relu`, activation: 'relu' }).apply(x) as tf.SymbolicTensor;
      }
    }
    // Pooling stays after the ReLU: tfjs-backend-wasm 4.22's MaxPoolGrad returns no gradient for a
    // window whose maximum is negative (checked against the cpu backend), which ReLU outputs never are.
    x = tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'head_dense1', units: HEAD_UNITS[0], activation: 'relu', kernelInitializer: nextInit() }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'head_dense2', units: HEAD_UNITS[1], activation: 'relu', kernelInitializer: nextInit() }).apply(x) as tf.SymbolicTensor;
  // No seed here: a seeded tfjs dropout draws the same mask at every step. Its randomness comes from
  // Math.random, which the training workers seed instead.
  x = tf.layers.dropout({ name: 'head_dropout', rate: HEAD_DROPOUT }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'head_dense3', units: HEAD_UNITS[2], activation: 'relu', kernelInitializer: nextInit() }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({ name: 'emotion', units: NUM_CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: `vgg16_fer_w${width}` });
}

/** Multiply-adds x2 for one 48x48 face through convolutions and dense layers (pooling/BN ignored). */
export function flopsPerFace(width: number): number {
  let side = INPUT_SIDE;
  let channels = 1;
  let flops = 0;
  for (const block of VGG16_BLOCKS) {
    const out = filtersAt(width, block.filters);
    for (let c = 0; c < block.convs; c++) {
      flops += 2 * side * side * 9 * channels * out;
      channels = out;
    }
    side = Math.floor(side / 2);
  }
  let features = side * side * channels;
  for (const units of [...HEAD_UNITS, NUM_CLASSES]) {
    flops += 2 * features * units;
    features = units;
  }
  return flops;
}
