/**
 * Batch normalisation in training mode as one op with a closed-form gradient.
 *
 * tfjs-layers computes it as moments + FusedBatchNorm and differentiates through both: a dozen
 * small kernels (Mean, Sub, Square, Sum, Multiply, ...) per layer, forward and backward, which
 * cost about a third of a training step on wasm. Here the statistics, the normalisation and
 * the gradient are plain loops over the channels-last data:
 *   y  = gamma * xhat + beta,  xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps)
 *   dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 *   dgamma = sum(dy * xhat),   dbeta = sum(dy)
 * (sums and means over every axis but the last; var is the biased batch variance, as in tfjs).
 */
import * as tf from '@tensorflow/tfjs';

/** The normalised output and the batch mean and (biased) variance it used. */
export interface BatchNormTrainingResult {
  y: tf.Tensor;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** The two calls of tfjs-backend-wasm used to read and write tensors in place on its heap. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/**
 * Float32 storage for the op's inputs and outputs. On wasm these are views of the backend's own
 * heap, so a training step allocates and copies nothing in JS. With per-step copies of every
 * activation (megabytes a layer) V8's GC threads took ~12% of the CPU and the step was only 6%
 * faster than tfjs-layers' batch norm; in place it is 13% faster (2-worker runs). Views are
 * taken only after every output is allocated, since an allocation can grow (and detach) the heap.
 * Other backends get plain copies.
 */
class Storage {
  readonly #heap: WasmHeapBackend | undefined;
  readonly #outputs: tf.TensorInfo[] = [];
  readonly #copies: Float32Array[] = [];

  constructor() {
    const backend = tf.backend() as unknown as Partial<WasmHeapBackend>;
    this.#heap = tf.getBackend() === 'wasm' && backend.makeOutput && backend.typedArrayFromHeap ? (backend as WasmHeapBackend) : undefined;
  }

  /** Reserves an output; `view` gives its values once all outputs are reserved. */
  allocate(shape: number[]): number {
    if (this.#heap) this.#outputs.push(this.#heap.makeOutput(shape, 'float32'));
    else this.#outputs.push({ shape, dtype: 'float32' } as tf.TensorInfo);
    this.#copies.push(new Float32Array(this.#heap ? 0 : shape.reduce((a, b) => a * b, 1)));
    return this.#outputs.length - 1;
  }

  read(t: tf.Tensor): Float32Array {
    return this.#heap ? this.#heap.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
  }

  view(output: number): Float32Array {
    return this.#heap ? this.#heap.typedArrayFromHeap(this.#outputs[output]!) : this.#copies[output]!;
  }

  tensor(output: number): tf.Tensor {
    const info = this.#outputs[output]!;
    return this.#heap ? tf.engine().makeTensorFromTensorInfo(info) : tf.tensor(this.#copies[output]!, info.shape);
  }
}

export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormTrainingResult {
  const channels = x.shape[x.rank - 1]!;
  if (gamma.size !== channels || beta.size !== channels) throw new Error(`batchNormTraining: ${channels} channels, gamma ${gamma.size}, beta ${beta.size}`);
  let batchMean = new Float32Array(0);
  let batchVariance = new Float32Array(0);

  const op = tf.customGrad(((xIn: tf.Tensor, gammaIn: tf.Tensor1D, betaIn: tf.Tensor1D, save: (tensors: tf.Tensor[]) => void) => {
    const g = Float64Array.from(gammaIn.dataSync());
    const b = Float64Array.from(betaIn.dataSync());
    const storage = new Storage();
    const yOut = storage.allocate(xIn.shape);
    // xhat is kept for the backward pass instead of x: no recomputation there.
    const xhatOut = storage.allocate(xIn.shape);
    const xs = storage.read(xIn);
    const ys = storage.view(yOut);
    const xhat = storage.view(xhatOut);
    const rows = xs.length / channels;
    const sum = new Float64Array(channels);
    for (let i = 0; i < xs.length; i += channels) for (let c = 0; c < channels; c++) sum[c]! += xs[i + c]!;
    const mean = new Float64Array(channels);
    for (let c = 0; c < channels; c++) mean[c] = sum[c]! / rows;
    const squares = new Float64Array(channels);
    for (let i = 0; i < xs.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const d = xs[i + c]! - mean[c]!;
        squares[c]! += d * d;
      }
    }
    const rstd = new Float64Array(channels);
    batchMean = Float32Array.from(mean);
    batchVariance = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      batchVariance[c] = squares[c]! / rows;
      rstd[c] = 1 / Math.sqrt(squares[c]! / rows + epsilon);
    }
    for (let i = 0; i < xs.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const h = (xs[i + c]! - mean[c]!) * rstd[c]!;
        xhat[i + c] = h;
        ys[i + c] = h * g[c]! + b[c]!;
      }
    }
    const xhatTensor = storage.tensor(xhatOut);
    save([xhatTensor]);

    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const back = new Storage();
      const dxOut = back.allocate(xIn.shape);
      const dys = back.read(dy);
      const xh = back.read(saved[0]!);
      const dxs = back.view(dxOut);
      const sumDy = new Float64Array(channels);
      const sumDyXhat = new Float64Array(channels);
      for (let i = 0; i < xh.length; i += channels) {
        for (let c = 0; c < channels; c++) {
          const d = dys[i + c]!;
          sumDy[c]! += d;
          sumDyXhat[c]! += d * xh[i + c]!;
        }
      }
      const meanDy = new Float64Array(channels);
      const meanDyXhat = new Float64Array(channels);
      const scale = new Float64Array(channels);
      for (let c = 0; c < channels; c++) {
        meanDy[c] = sumDy[c]! / rows;
        meanDyXhat[c] = sumDyXhat[c]! / rows;
        scale[c] = g[c]! * rstd[c]!;
      }
      for (let i = 0; i < xh.length; i += channels) {
        for (let c = 0; c < channels; c++) dxs[i + c] = scale[c]! * (dys[i + c]! - meanDy[c]! - xh[i + c]! * meanDyXhat[c]!);
      }
      return [back.tensor(dxOut), tf.tensor1d(Float32Array.from(sumDyXhat)), tf.tensor1d(Float32Array.from(sumDy))];
    };
    return { value: storage.tensor(yOut), gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);

  const y = op(x, gamma, beta);
  return { y, mean: tf.tensor1d(batchMean), variance: tf.tensor1d(batchVariance) };
}

interface LayerVariableLike {
  read(): tf.Variable;
  write(value: tf.Tensor): void;
}

interface BatchNormLayerInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariableLike;
  beta: LayerVariableLike;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[];
}

/**
 * Makes every channels-last BatchNormalization layer of `model` use `batchNormTraining` when
 * called in training mode, with tfjs-layers' moving-average update; inference is untouched and
 * the layers serialise exactly as before. Returns how many layers were switched.
 */
export function useFusedBatchNormTraining(model: tf.LayersModel): number {
  let switched = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const bn = layer as unknown as BatchNormLayerInternals;
    if (!bn.center || !bn.scale || (bn.axis !== -1 && bn.axis !== 3)) continue;
    const original = bn.call.bind(bn);
    bn.call = (inputs, kwargs) => {
      const input = Array.isArray(inputs) ? inputs[0]! : inputs;
      if (!kwargs.training || input.rank !== 4) return original(inputs, kwargs);
      return tf.tidy(() => {
        const { y, mean, variance } = batchNormTraining(input, bn.gamma.read() as tf.Tensor1D, bn.beta.read() as tf.Tensor1D, bn.epsilon);
        // The same update as tfjs-layers: moving -= (moving - batch) * (1 - momentum).
        for (const [variable, value] of [
          [bn.movingMean, mean],
          [bn.movingVariance, variance],
        ] as const) {
          tf.tidy(() => {
            const current = variable.read();
            variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - bn.momentum)));
          });
        }
        return y;
      });
    };
    switched++;
  }
  return switched;
}
