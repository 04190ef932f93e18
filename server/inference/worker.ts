/**
 * One inference worker thread: its own tfjs (wasm by default), face-api nets and emotion model.
 * The wasm backend runs one thread per tfjs instance in Node, so the server uses several cores by
 * running WORKERS of these (default: one per core, at most 4); the main thread only routes
 * sockets and batches. It answers the calls of worker-protocol.ts: `analyze` (frames through
 * prepare-frame.ts and the classifier, all their faces in one batch: one hop a frame), `prepare`
 * (prepare-frame.ts only, for the cross-frame batcher) and `classify` (one batch from it), the
 * two-phase model reload (`load-model`, then `swap-model` or `drop-model`) and `memory`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EMOTIONS } from '../../contract/emotions.ts';
import { AppError, toAppError } from '../../contract/errors.ts';
import { initBackend, tf } from '../../contract/backend.ts';
import { type BlazeModel, loadBlazeModel } from '../pipeline/blazeface.ts';
import { normalisedScores } from '../../contract/emotions.ts';
import { loadFaceNets } from '../pipeline/faceapi.ts';
import { DEFAULT_TRACKING } from '../pipeline/face-tracking.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import { EmotionModel } from './emotion-model.ts';
import { type PrepareContext, prepareFrame, prepareFrames } from './prepare-frame.ts';
import type {
  CallKind,
  FrameInput,
  FrameOutcome,
  RequestOf,
  ResultOf,
  WorkerCalls,
  WorkerFailure,
  WorkerInit,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol.ts';

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
  async analyze({ frames }) {
    const prepared = (await prepareFrames(frames, context())).map((p, i) =>
      p.ok ? { ok: true as const, frame: p.frame, mirror: frames[i]!.plan.mirrorAverage } : { ok: false as const, error: failureOf(p.error, 'analyze') },
    );
    // One classifier batch per mirror setting (frames of one call usually share one).
    const outcomes: FrameOutcome[] = prepared.map((p) => (p.ok ? { ok: false, error: { code: 'internal', message: 'not classified' } } : p));
    for (const mirror of new Set(prepared.flatMap((p) => (p.ok ? [p.mirror] : [])))) {
      const group = prepared.flatMap((p, index) => (p.ok && p.mirror === mirror ? [{ frame: p.frame, index }] : []));
      const started = performance.now();
      const crops = concatenate(group.map((g) => g.frame.crops));
      const probabilities = model.classify(crops, group.reduce((n, g) => n + g.frame.faces.length, 0), mirror);
      const classify = performance.now() - started;
      const k = EMOTIONS.length;
      let face = 0;
      for (const { frame, index } of group) {
        const faces = frame.faces.map((f) => ({ ...f, emotions: normalisedScores(probabilities.subarray(face * k, ++face * k)) }));
        const { crops: _crops, cropSize: _cropSize, ...facts } = frame;
        outcomes[index] = { ok: true, frame: { ...facts, faces, timings: { ...frame.timings, classify } } };
      }
    }
    const transfer = outcomes.flatMap((o) => (o.ok && o.frame.thumbnail ? [o.frame.thumbnail.buffer as ArrayBuffer] : []));
    return { value: { frames: outcomes }, transfer };
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

/** A thrown value as what the main thread turns back into an AppError (unknown failures name the call, not internals). */
function failureOf(error: unknown, kind: CallKind): WorkerFailure {
  if (error instanceof AppError) return { code: error.code, message: error.message };
  return { code: toAppError(error).code, message: `${kind} failed: ${(error as Error)?.message ?? String(error)}` };
}

function concatenate(parts: Float32Array[]): Float32Array {
  const joined = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

async function handle<K extends CallKind>(request: RequestOf<K>): Promise<void> {
  try {
    const handler: Handlers[K] = handlers[request.kind];
    const { value, transfer } = await handler(request);
    const result: ResultOf<K> = { type: 'result', id: request.id, ok: true, kind: request.kind, value };
    port.postMessage(result, transfer ?? []);
  } catch (error) {
    post({ type: 'result', id: request.id, ok: false, error: failureOf(error, request.kind) });
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
      const faces = regions.map((region) => ({ region }));
      await prepareFrame(input(), { detector: { kind: 'blazeface', inputSize: 256, minScore: 0.5 }, track: { faces, options: DEFAULT_TRACKING } }, context());
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
