/**
 * MaxPoolGrad for the VGG base's 2x2, stride-2, valid-padded pooling on wasm, as one loop over
 * the wasm heap in place: each window's dy goes to the position of its maximum (the first one in
 * row-major order on ties, as tfjs' cpu backend picks it). tfjs-backend-wasm 4.22's own kernel
 * took 44 ms of a 682 ms training step (batch 32, width 0.25); other pooling shapes keep it.
 */
import * as tf from '@tensorflow/tfjs';

/** The two calls of tfjs-backend-wasm used to read and write tensors in place on its heap. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

type PoolAttrs = {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: unknown;
  dimRoundingMode?: string;
};

function isPair(value: number | [number, number], n: number): boolean {
  return typeof value === 'number' ? value === n : value[0] === n && value[1] === n;
}

/** dx[b, y, x, c] for x[B, H, W, C] and dy[B, floor(H/2), floor(W/2), C]. */
export function maxPool2x2Gradient(x: Float32Array, dy: Float32Array, dx: Float32Array, shape: readonly number[]): void {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  const outH = Math.floor(height / 2);
  const outW = Math.floor(width / 2);
  const row = width * channels;
  dx.fill(0);
  let g = 0;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const topLeft = ((b * height + 2 * oy) * width + 2 * ox) * channels;
        for (let c = 0; c < channels; c++, g++) {
          const p00 = topLeft + c;
          const p01 = p00 + channels;
          const p10 = p00 + row;
          const p11 = p10 + channels;
          let best = p00;
          let max = x[p00]!;
          if (x[p01]! > max) {
            best = p01;
            max = x[p01]!;
          }
          if (x[p10]! > max) {
            best = p10;
            max = x[p10]!;
          }
          if (x[p11]! > max) best = p11;
          dx[best] = dy[g]!;
        }
      }
    }
  }
}

let registeredFor: string | undefined;

/** Registers the 2x2 MaxPoolGrad on `backendName` (a wasm backend), keeping the shipped kernel for other shapes. */
export function registerMaxPoolGradKernel(backendName = 'wasm'): void {
  if (registeredFor === backendName) return;
  const shipped = tf.getKernel('MaxPoolGrad', backendName);
  if (!shipped) throw new Error(`no MaxPoolGrad kernel on ${backendName} to fall back on`);
  tf.unregisterKernel('MaxPoolGrad', backendName);
  tf.registerKernel({
    kernelName: 'MaxPoolGrad',
    backendName,
    kernelFunc: (args) => {
      const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const attrs = args.attrs as unknown as PoolAttrs;
      const heap = args.backend as unknown as Partial<WasmHeapBackend>;
      const fits = isPair(attrs.filterSize, 2) && isPair(attrs.strides, 2) && attrs.pad === 'valid' && input.shape.length === 4 && input.dtype === 'float32';
      if (!fits || !heap.makeOutput || !heap.typedArrayFromHeap) return shipped.kernelFunc(args);
      const out = heap.makeOutput(input.shape, 'float32');
      // Views only after the allocation, which can grow (and detach) the heap.
      maxPool2x2Gradient(heap.typedArrayFromHeap(input), heap.typedArrayFromHeap(dy), heap.typedArrayFromHeap(out), input.shape);
      return out;
    },
  });
  registeredFor = backendName;
}
