/**
 * One data-parallel replica: computes gradients on its share of each batch and applies the
 * averaged gradients the coordinator sends back, so every replica keeps identical weights.
 */
import { parentPort } from 'node:worker_threads';
import { initBackend, tf } from '../contract/backend.ts';
import { directoryIO } from '../contract/model-io.ts';
import { augmentInto, createRng } from './augment.ts';
import { FER_PIXELS } from './data/fer2013.ts';
import { registerBatchNormGradient } from './kernels/batchnorm-grad.ts';
import { useFusedBatchNormTraining } from './kernels/batchnorm-training.ts';
import { registerConvGradientKernels } from './kernels/conv-grads.ts';
import { registerMaxPoolGradKernel } from './kernels/max-pool-grad.ts';
import { loadBackboneWeights } from './model/backbone-weights.ts';
import { quantizeArtifactsToFloat16 } from './model/float16.ts';
import { facesToTensor, predictFaces } from './predict.ts';
import { recalibrateBatchNorm } from './model/bn-calibration.ts';
import { buildVgg16, NUM_CLASSES } from './model/vgg.ts';
import { HostAdamax } from './host-adamax.ts';
import type { CoordinatorMessage, TrainState, WorkerInit, WorkerMessage } from './worker-protocol.ts';

if (!parentPort) throw new Error('training/worker.ts must run as a worker thread');
const port = parentPort;

let init: WorkerInit;
let model: tf.LayersModel;
let optimizer: HostAdamax;
let classWeights: tf.Tensor1D;

function post(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/** A training batch: augmented faces at side x side, normalised as the model card says. */
function toInput(images: Uint8Array, indices: ArrayLike<number>, augmentSeed: number, side: number): tf.Tensor4D {
  const n = indices.length;
  const pixels = side * side;
  const data = new Float32Array(n * pixels);
  const rng = createRng(augmentSeed);
  for (let i = 0; i < n; i++) augmentInto(images, indices[i]! * FER_PIXELS, data, i * pixels, rng, init.augment, side);
  const { scale, offset } = init.normalisation;
  for (let p = 0; p < data.length; p++) data[p] = data[p]! * scale + offset;
  return tf.tensor4d(data, [n, side, side, 1]);
}

/**
 * The step's tensors stay allocated until its averaged gradients are applied: measured on wasm, a
 * forward/backward pass after an apply that ran once the previous step's tensors were freed took
 * 1,064 ms instead of 763 ms (batch 32, width 0.25), with nothing else different.
 */
let stepScopeOpen = false;

function closeStepScope(): void {
  if (!stepScopeOpen) return;
  tf.engine().endScope();
  stepScopeOpen = false;
}

function computeGradients(indices: Int32Array, augmentSeed: number, side: number): WorkerMessage {
  const labels = Array.from(indices, (i) => init.labels[i]!);
  closeStepScope();
  tf.engine().startScope();
  stepScopeOpen = true;
  const result = (() => {
    const x = toInput(init.images, indices, augmentSeed, side);
    const labelTensor = tf.tensor1d(labels, 'int32');
    const smoothing = init.labelSmoothing;
    const target = tf.add(tf.mul(tf.oneHot(labelTensor, NUM_CLASSES), 1 - smoothing), smoothing / NUM_CLASSES);
    const weights = tf.gather(classWeights, labelTensor);
    let correct = 0;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const probs = model.apply(x, { training: true }) as tf.Tensor2D;
      correct = tf.sum(tf.cast(tf.equal(tf.argMax(probs, 1), labelTensor), 'int32')).dataSync()[0]!;
      const perSample = tf.neg(tf.sum(tf.mul(target, tf.log(tf.clipByValue(probs, 1e-7, 1))), 1));
      return tf.div(tf.sum(tf.mul(perSample, weights)), tf.sum(weights)) as tf.Scalar;
    }, vars);
    const gradArrays = vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
    return { loss: value.dataSync()[0]!, correct, gradArrays };
  })();
  // dataSync arrays are views the backend may reuse: copy (slice is a plain memcpy) before transferring.
  const copies = result.gradArrays.map((g) => g.slice());
  return { type: 'grad', grads: copies, loss: result.loss, correct: result.correct, n: indices.length };
}

function applyGradients(grads: Float32Array[], learningRate: number): void {
  optimizer.apply(grads, learningRate);
  closeStepScope();
}

function trainableVariables(): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

function snapshot(name: string, t: tf.Tensor): TrainState['weights'][number] {
  return { name, shape: [...t.shape], data: (t.dataSync() as Float32Array).slice() };
}

function getState(): TrainState {
  const weights = model.weights.map((w) => snapshot(w.originalName, w.read()));
  const { iterations, firstMoment, infNorm } = optimizer.slots();
  const optimizerState = [{ name: 'iteration', shape: [], data: Float32Array.of(iterations) }, ...firstMoment, ...infNorm];
  return { weights, optimizer: optimizerState };
}

function setState(state: TrainState): void {
  if (state.weights.length !== model.weights.length) throw new Error('checkpoint does not match the model');
  const values = state.weights.map((w) => tf.tensor(w.data, w.shape));
  model.setWeights(values);
  tf.dispose(values);
  const [iteration, ...rest] = state.optimizer;
  if (!iteration) {
    optimizer.syncWeights();
    return;
  }
  const half = rest.length / 2;
  optimizer.restore(iteration.data[0]!, rest.slice(0, half).map((s) => s.data), rest.slice(half).map((s) => s.data));
}

function checksum(): number {
  return tf.tidy(() => model.weights.reduce((acc, w) => acc + tf.sum(tf.abs(w.read())).dataSync()[0]!, 0));
}

async function handle(message: CoordinatorMessage): Promise<void> {
  switch (message.type) {
    case 'init': {
      init = message;
      // tfjs draws dropout masks from Math.random: seed it so a run is reproducible from --seed.
      Math.random = createRng(message.seed * 101 + message.workerIndex + 1);
      const backend = await initBackend(message.backend);
      if (backend === 'wasm') {
        registerConvGradientKernels('wasm');
        registerMaxPoolGradKernel('wasm');
      }
      registerBatchNormGradient();
      model = buildVgg16({ width: message.width, batchNorm: message.batchNorm, seed: message.seed });
      if (message.backboneWeights) await loadBackboneWeights(model, message.backboneWeights);
      // Its loops read tensors back to the CPU: a win on wasm and cpu, a stall on a GPU.
      if (backend === 'wasm' || backend === 'cpu') useFusedBatchNormTraining(model);
      optimizer = new HostAdamax(trainableVariables());
      classWeights = tf.tensor1d(message.classWeights);
      post({ type: 'ready', backend, parameters: model.countParams(), checksum: checksum() });
      return;
    }
    case 'grad': {
      const reply = computeGradients(message.indices, message.augmentSeed, message.side);
      post(reply, reply.type === 'grad' ? reply.grads.map((g) => g.buffer as ArrayBuffer) : []);
      return;
    }
    case 'apply':
      applyGradients(message.grads, message.learningRate);
      post({ type: 'applied' });
      return;
    case 'recalibrate': {
      const { indices, batch } = message;
      function* batches(): Generator<tf.Tensor4D> {
        for (let s = 0; s < indices.length; s += batch) {
          const chunk = indices.subarray(s, s + batch);
          const images = new Uint8Array(chunk.length * FER_PIXELS);
          chunk.forEach((index, i) => images.set(init.images.subarray(index * FER_PIXELS, (index + 1) * FER_PIXELS), i * FER_PIXELS));
          yield facesToTensor(images, 0, chunk.length, init.normalisation);
        }
      }
      post({ type: 'recalibrated', batches: recalibrateBatchNorm(model, batches()) });
      return;
    }
    case 'predict': {
      const probs = predictFaces(model, message.images, message.start, message.end, init.normalisation, message.tta);
      post({ type: 'predicted', probs }, [probs.buffer as ArrayBuffer]);
      return;
    }
    case 'save':
      await model.save(
        tf.io.withSaveHandler((artifacts) => directoryIO(message.dir).save!(message.float16 ? quantizeArtifactsToFloat16(artifacts) : artifacts)),
      );
      post({ type: 'saved' });
      return;
    case 'getState':
      post({ type: 'state', state: getState() });
      return;
    case 'setState':
      setState(message.state);
      post({ type: 'stateSet' });
      return;
  }
}

// Messages are handled strictly one at a time, in order.
let queue = Promise.resolve();
port.on('message', (message: CoordinatorMessage) => {
  queue = queue.then(() => handle(message)).catch((error: unknown) => post({ type: 'error', message: (error as Error).stack ?? String(error) }));
});
