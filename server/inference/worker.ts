/**
 * One inference worker thread: its own tfjs (wasm by default), face-api nets and emotion model.
 * The wasm backend runs one thread per tfjs instance in Node, so the server uses several cores by
 * running WORKERS of these (default: one per core, at most 4); the main thread only routes
 * sockets and batches. It answers the calls of worker-protocol.ts: `analyze` (one frame through
 * prepare-frame.ts and the classifier: one hop), `prepare` (prepare-frame.ts only, for the
 * cross-frame batcher) and `classify` (one batch from it), the two-phase model reload
 * (`load-model`, then `swap-model` or `drop-model`) and `memory`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EMOTIONS } from '../../contract/emotions.ts';
import { AppError, toAppError } from '../../contract/errors.ts';
import { initBackend, tf } from '../../contract/backend.ts';
import { type BlazeModel, loadBlazeModel } from '../pipeline/blazeface.ts';
import { normalisedScores } from '../pipeline/classify.ts';
import { loadFaceNets } from '../pipeline/faceapi.ts';
import { DEFAULT_TRACKING } from '../pipeline/face-tracking.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import { EmotionModel } from './emotion-model.ts';
import { type PrepareContext, prepareFrame } from './prepare-frame.ts';
import type { CallKind, FrameInput, RequestOf, ResultOf, WorkerCalls, WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.ts';

if (!parentPort) throw new Error('server/inference/worker.ts must run as a worker thread');
const port = parentPort;
const init: WorkerInit = workerData;

let model: EmotionModel;
let blaze: { back: BlazeModel; short: BlazeModel } | undefined;
/** a model loaded by `load-model`, waiting for `swap-model` or `drop-model` */
let candidate: EmotionModel | undefined;

interface Handled<K extends CallKind> {
  value: WorkerCalls[K]['reply'];
  /** buffers moved to the main thread instead of copied */
  transfer?: ArrayBuffer[];
}
type Handlers = { [K in CallKind]: (request: WorkerCalls[K]['request']) => Promise<Handled<K>> };

const handlers: Handlers = {
  async analyze({ input, plan }) {
    const prepared = await prepareFrame(input, plan, context());
    const started = performance.now();
    const k = EMOTIONS.length;
    const probabilities = model.classify(prepared.crops, prepared.faces.length, plan.mirrorAverage);
    const faces = prepared.faces.map((face, i) => ({ ...face, emotions: normalisedScores(probabilities.subarray(i * k, (i + 1) * k)) }));
    const { crops: _crops, cropSize: _cropSize, ...facts } = prepared;
    const value = { ...facts, faces, timings: { ...prepared.timings, classify: performance.now() - started } };
    return { value, transfer: value.thumbnail ? [value.thumbnail.buffer as ArrayBuffer] : [] };
  },
  async prepare({ input, plan }) {
    const value = await prepareFrame(input, plan, context());
    const transfer = [value.crops.buffer as ArrayBuffer];
    if (value.thumbnail) transfer.push(value.thumbnail.buffer as ArrayBuffer);
    return { value, transfer };
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

function context(): PrepareContext {
  return { minFaceSize: init.minFaceSize, limits: init.limits, template: model.template, blaze };
}

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
    await prepareFrame(input, { detector }, context());
  }
  if (blaze) {
    // The tracking graph compiles its kernels per batch size; the first crops of a stream should not pay that.
    const input = (): FrameInput => ({ kind: 'rgb', data: data.slice(), width, height });
    for (const regions of [[{ x: 100, y: 60, width: 80, height: 80 }], [{ x: 40, y: 40, width: 60, height: 60 }, { x: 200, y: 100, width: 60, height: 60 }]]) {
      await prepareFrame(input(), { detector: { kind: 'blazeface', inputSize: 256, minScore: 0.5 }, track: { regions, options: DEFAULT_TRACKING } }, context());
    }
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
    if (init.warmupDetectors.some((d) => d.kind === 'blazeface')) {
      blaze = { back: await loadBlazeModel(init.blazeModelDir, 'back'), short: await loadBlazeModel(init.blazeModelDir, 'short') };
    }
    model = await EmotionModel.load(init.modelDir, { mirrorAverage: init.mirrorAverage });
    await warmUp();
    port.on('message', (request: WorkerRequest) => void handle(request));
    post({ type: 'ready', backend, modelVersion: model.version });
  } catch (error) {
    post({ type: 'init-failed', message: (error as Error)?.message ?? String(error) });
  }
}

void start();
