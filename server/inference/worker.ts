/**
 * One inference worker thread: its own tfjs (wasm by default), face-api nets and emotion model.
 * The wasm backend runs one thread per tfjs instance in Node, so the server uses several cores by
 * running WORKERS of these (default: one per core, at most 4); the main thread only routes
 * sockets and batches. It answers the calls of worker-protocol.ts: `prepare` (the stages of
 * prepare-frame.ts for one frame), `classify` (one batch of aligned crops from the dynamic
 * batcher), the two-phase model reload (`load-model`, then `swap-model` or `drop-model`) and
 * `memory`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AppError, toAppError } from '../../contract/errors.ts';
import { initBackend, tf } from '../../contract/backend.ts';
import { loadFaceNets } from '../pipeline/faceapi.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import { EmotionModel } from './emotion-model.ts';
import { prepareFrame } from './prepare-frame.ts';
import type { CallKind, FrameInput, RequestOf, ResultOf, WorkerCalls, WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.ts';

if (!parentPort) throw new Error('server/inference/worker.ts must run as a worker thread');
const port = parentPort;
const init: WorkerInit = workerData;

let model: EmotionModel;
/** a model loaded by `load-model`, waiting for `swap-model` or `drop-model` */
let candidate: EmotionModel | undefined;

interface Handled<K extends CallKind> {
  value: WorkerCalls[K]['reply'];
  /** buffers moved to the main thread instead of copied */
  transfer?: ArrayBuffer[];
}
type Handlers = { [K in CallKind]: (request: WorkerCalls[K]['request']) => Promise<Handled<K>> };

const handlers: Handlers = {
  async prepare({ input, detector }) {
    const value = await prepareFrame(input, { detector, minFaceSize: init.minFaceSize, limits: init.limits, template: model.template });
    return { value, transfer: [value.crops.buffer as ArrayBuffer] };
  },
  async classify({ crops, count }) {
    const probabilities = model.classify(crops, count);
    return { value: { probabilities }, transfer: [probabilities.buffer as ArrayBuffer] };
  },
  async 'load-model'({ modelDir }) {
    candidate?.dispose();
    candidate = undefined;
    candidate = await EmotionModel.load(modelDir, { mirrorAverage: init.mirrorAverage });
    return { value: { modelVersion: candidate.version } };
  },
  async 'swap-model'() {
    if (!candidate) throw new AppError('internal', 'no model was loaded to swap in');
    const previous = model;
    model = candidate;
    candidate = undefined;
    // classify() is synchronous, so no batch is running on the old model at this point.
    previous.dispose();
    return { value: { modelVersion: model.version } };
  },
  async 'drop-model'() {
    candidate?.dispose();
    candidate = undefined;
    return { value: {} };
  },
  async memory() {
    const { numTensors, numBytes } = tf.memory();
    return { value: { numTensors, numBytes } };
  },
};

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

async function handle<K extends CallKind>(request: RequestOf<K>): Promise<void> {
  try {
    const handler: Handlers[K] = handlers[request.kind];
    const { value, transfer } = await handler(request);
    const result: ResultOf<K> = { type: 'result', id: request.id, ok: true, kind: request.kind, value };
    port.postMessage(result, transfer ?? []);
  } catch (error) {
    const appError = error instanceof AppError ? error : toAppError(error);
    const message = error instanceof AppError ? error.message : `${request.kind} failed: ${(error as Error)?.message ?? String(error)}`;
    post({ type: 'result', id: request.id, ok: false, error: { code: appError.code, message } });
  }
}

/** Runs every net once on a synthetic frame so the first real frame does not pay kernel compilation. */
async function warmUp(): Promise<void> {
  const width = 320;
  const height = 240;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  for (const detector of init.warmupDetectors) {
    const input: FrameInput = { kind: 'rgb', data: data.slice(), width, height };
    await prepareFrame(input, { detector, minFaceSize: init.minFaceSize, limits: init.limits, template: model.template });
  }
  const image = tf.tensor3d(data, [height, width, 3], 'int32');
  try {
    await detectLandmarks(image, [{ x: 100, y: 60, width: 120, height: 120 }]);
  } finally {
    image.dispose();
  }
}

async function start(): Promise<void> {
  try {
    const backend = await initBackend(init.backend);
    await loadFaceNets(init.faceModelDir);
    model = await EmotionModel.load(init.modelDir, { mirrorAverage: init.mirrorAverage });
    await warmUp();
    port.on('message', (request: WorkerRequest) => void handle(request));
    post({ type: 'ready', backend, modelVersion: model.version });
  } catch (error) {
    post({ type: 'init-failed', message: (error as Error)?.message ?? String(error) });
  }
}

void start();
