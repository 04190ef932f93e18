import * as tf from '@tensorflow/tfjs';
import { VGG16_BLOCKS } from './vgg.ts';

/**
 * Initialises the convolutional base from a Keras VGG16 "notop" .h5 file (e.g. ImageNet weights,
 * vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) for users who have one. Layers are matched by
 * Keras name (block1_conv1 ... block5_conv3); an RGB first kernel is summed over its colour channels
 * for our grey input. Any other shape mismatch is an error naming the layer.
 */
export async function loadBackboneWeights(model: tf.LayersModel, file: string): Promise<number> {
  const h5wasm = (await import('h5wasm/node')).default;
  await h5wasm.ready;
  const h5 = new h5wasm.File(file, 'r');
  try {
    let loaded = 0;
    for (const [b, block] of VGG16_BLOCKS.entries()) {
      for (let c = 0; c < block.convs; c++) {
        const name = `block${b + 1}_conv${c + 1}`;
        const layer = model.getLayer(name);
        const [kernelVar, biasVar] = layer.getWeights();
        const kernel = readDataset(h5, name, 'kernel');
        const bias = readDataset(h5, name, 'bias');
        const kernelShape = kernelVar!.shape;
        let kernelData = kernel.data;
        if (kernel.shape[2] === 3 && kernelShape[2] === 1) {
          kernelData = sumColourChannels(kernel.data, kernel.shape);
          kernel.shape = [kernel.shape[0]!, kernel.shape[1]!, 1, kernel.shape[3]!];
        }
        if (kernel.shape.join('x') !== kernelShape.join('x') || bias.shape.join('x') !== biasVar!.shape.join('x')) {
          throw new Error(
            `${file}: ${name} has kernel ${kernel.shape.join('x')} / bias ${bias.shape.join('x')}, the model needs ` +
              `${kernelShape.join('x')} / ${biasVar!.shape.join('x')} (ImageNet weights need --width 1)`,
          );
        }
        layer.setWeights([tf.tensor(kernelData, kernelShape), tf.tensor(bias.data, biasVar!.shape)]);
        loaded++;
      }
    }
    return loaded;
  } finally {
    h5.close();
  }
}

type H5File = InstanceType<(typeof import('h5wasm/node'))['default']['File']>;

/** Keras stores layer weights at `<layer>/<layer>/kernel:0` (names listed in the `weight_names` attribute). */
function readDataset(h5: H5File, layer: string, kind: 'kernel' | 'bias'): { data: Float32Array; shape: number[] } {
  const group = h5.get(layer);
  if (!group) throw new Error(`no layer ${layer} in the .h5 file`);
  const attr = (group as { attrs?: Record<string, { value: unknown }> }).attrs?.['weight_names']?.value;
  const names = (Array.isArray(attr) ? attr : attr ? [attr] : []).map(String);
  const weightName = names.find((n) => n.includes(kind)) ?? `${layer}/${kind}:0`;
  const dataset = h5.get(`${layer}/${weightName}`) as { value: unknown; shape: number[] } | null;
  if (!dataset || !('shape' in dataset)) throw new Error(`no ${kind} for ${layer} in the .h5 file`);
  return { data: Float32Array.from(dataset.value as ArrayLike<number>), shape: [...dataset.shape] };
}

function sumColourChannels(data: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  const out = new Float32Array(kh * kw * cout);
  for (let i = 0; i < kh * kw; i++) for (let c = 0; c < cin; c++) for (let o = 0; o < cout; o++) out[i * cout + o]! += data[(i * cin + c) * cout + o]!;
  return out;
}
