/**
 * One inference worker thread: its own tfjs (wasm by default), face-api nets and emotion model.
 * The wasm backend runs one thread per tfjs instance in Node, so the server uses both cores by
 * running one of these per core; the main thread only routes sockets and batches.
 * It runs two kinds of work for the pool: `prepare` (decode -> detect -> landmarks -> align of
 * one frame) and `classify` (one batch of aligned crops from the dynamic batcher).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AppError, toAppError } from '../../contract/errors.ts';
import { alignFace } from '../pipeline/align.ts';
import { decodeImage } from '../pipeline/decode.ts';
import { detectFaces } from '../pipeline/detect.ts';
import { loadFaceNets } from '../pipeline/faceapi.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import type { RgbFrame } from '../pipeline/types.ts';
import { initBackend, tf } from '../../contract/backend.ts';
import { EmotionModel } from './emotion-model.ts';
import type {
  FrameInput,
  PreparedFrame,
  WorkerInit,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';

if (!parentPort) throw new Error('server/inference/worker.ts must run as a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;

let model: EmotionModel;

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

async function toFrame(input: FrameInput): Promise<RgbFrame> {
  if (input.kind === 'encoded') return decodeImage(input.bytes, init.limits);
  const expected = input.width * input.height * 3;
  if (!(input.width > 0 && input.height > 0) || input.data.byteLength !== expected) {
    throw new AppError('bad_request', `raw frame of ${input.width}x${input.height} needs ${expected} RGB bytes, got ${input.data.byteLength}`);
  }
  if (input.width * input.height > init.limits.maxImagePixels) {
    throw new AppError('image_too_large', `the frame has ${input.width}x${input.height} pixels, the limit is ${init.limits.maxImagePixels}`);
  }
  return { data: input.data, width: input.width, height: input.height };
}

async function prepare(input: FrameInput, detector: DetectorSpec): Promise<PreparedFrame> {
  let mark = performance.now();
  const lap = (): number => {
    const now = performance.now();
    const spent = now - mark;
    mark = now;
    return spent;
  };
  const frame = await toFrame(input);
  const decode = lap();
  const image = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
  try {
    const detections = await detectFaces(image, detector, init.minFaceSize);
    const detect = lap();
    const landmarks = await detectLandmarks(image, detections.map((d) => d.box));
    const landmarksMs = lap();
    const template = model.template;
    const cropSize = template.size * template.size;
    const crops = new Float32Array(detections.length * cropSize);
    detections.forEach((_, i) => crops.set(alignFace(frame, landmarks[i]!, template), i * cropSize));
    const align = lap();
    return {
      width: frame.width,
      height: frame.height,
      faces: detections.map((d, i) => ({ box: d.box, score: d.score, landmarks: landmarks[i]! })),
      crops,
      cropSize: template.size,
      timings: { decode, detect, landmarks: landmarksMs, align },
    };
  } finally {
    image.dispose();
  }
}

/** Loads the new model next to the old one and swaps only when it loaded and warmed up. */
async function reload(modelDir: string): Promise<{ modelVersion: string }> {
  const next = await EmotionModel.load(modelDir, { mirrorAverage: init.mirrorAverage });
  const previous = model;
  model = next;
  // classify() is synchronous, so no batch is running on the old model at this point.
  previous.dispose();
  return { modelVersion: next.version };
}

async function handle(request: WorkerRequest): Promise<void> {
  try {
    switch (request.type) {
      case 'prepare': {
        const value = await prepare(request.input, request.detector);
        post({ type: 'result', id: request.id, ok: true, value }, [value.crops.buffer as ArrayBuffer]);
        return;
      }
      case 'classify': {
        const probabilities = model.classify(request.crops, request.count);
        const value = { probabilities, modelVersion: model.version };
        post({ type: 'result', id: request.id, ok: true, value }, [probabilities.buffer as ArrayBuffer]);
        return;
      }
      case 'reload': {
        post({ type: 'result', id: request.id, ok: true, value: await reload(request.modelDir) });
        return;
      }
      case 'memory': {
        const { numTensors, numBytes } = tf.memory();
        post({ type: 'result', id: request.id, ok: true, value: { numTensors, numBytes } });
        return;
      }
    }
  } catch (error) {
    const appError = error instanceof AppError ? error : toAppError(error);
    const message = error instanceof AppError ? error.message : `${request.type} failed: ${(error as Error)?.message ?? String(error)}`;
    post({ type: 'result', id: request.id, ok: false, error: { code: appError.code, message } });
  }
}

/** Runs every net once on a synthetic frame so the first real frame does not pay kernel compilation. */
async function warmUp(): Promise<void> {
  const width = 320;
  const height = 240;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  const input: FrameInput = { kind: 'rgb', data, width, height };
  for (const detector of init.warmupDetectors) await prepare(input, detector);
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
