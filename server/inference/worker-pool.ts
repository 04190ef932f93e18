/**
 * A fixed set of inference worker threads and one priority queue in front of them.
 * Each worker runs one task at a time; an idle worker takes the most urgent task:
 * classifier batches first (they finish frames already paid for), then live frames, then
 * single images, then video frames, so files never starve live streams. Each frame queue is bounded
 * and refuses work with `queue_full` instead of growing. Every call is typed by the map in
 * worker-protocol.ts.
 */
import { setFlagsFromString } from 'node:v8';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import { createTsWorker } from '../../contract/ts-worker.ts';
import { batchQueueWaitSeconds, queueDepth } from '../metrics/metrics.ts';
import type { FrameSource } from '../pipeline/types.ts';
import {
  type AnalysedFrame,
  type CallKind,
  type FramePlan,
  type FrameInput,
  isResultOf,
  type MemoryResult,
  type PreparedFrame,
  type RequestOf,
  type WorkerCalls,
  type WorkerInit,
  type WorkerReply,
  type WorkerResult,
} from './worker-protocol.ts';

/** The frame's pixels move to the worker instead of being copied (the 1 KiB thumbnail is copied: the stream keeps it). */
function transferOf(input: FrameInput): ArrayBuffer[] {
  return [(input.kind === 'encoded' ? input.bytes.buffer : input.data.buffer) as ArrayBuffer];
}

type Lane = 'classify' | FrameSource;
const LANES: readonly Lane[] = ['classify', 'live', 'image', 'video'];

/** One frame waiting for an `analyze` call; frames waiting together go to a worker in one call. */
interface FrameTask {
  frame: { input: FrameInput; plan: FramePlan };
  source: FrameSource;
  enqueuedAt: number;
  transfer: ArrayBuffer[];
  resolve(frame: AnalysedFrame): void;
  reject(error: Error): void;
}

/** One call on its way: how to send it to a worker and how to settle it when the worker answers. */
interface Task {
  /** queued tasks occupy their worker until answered; control calls do not */
  queued: boolean;
  send(worker: Worker, id: number): void;
  settle(reply: WorkerResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  pending: Map<number, Task>;
}

export interface PoolOptions {
  size: number;
  init: WorkerInit;
  /** at most this many waiting frames go to an idle worker in one `analyze` call */
  maxFramesPerCall: number;
  /** frames waiting per source before new ones are refused */
  queueLimits: Record<FrameSource, number>;
  logger: Logger;
}

const WORKER_URL = new URL('./worker.ts', import.meta.url);

/**
 * Lets each heap grow to twice its live size before V8 marks it again (a process-wide V8 flag;
 * default growth is about 1.1x for a heap that looks busy). A worker's heap holds ~60 MB of code
 * and model objects that never die, while each frame's short-lived buffers keep pushing it past a
 * tight limit: under 10 live streams every worker ran a full mark-compact every ~0.6 s, and
 * marking 60 MB that often cost ~7 ms of background-thread CPU per frame (measured with per-thread
 * CPU, 10 clients x 5 fps); with this, ~2.7 ms. Costs up to one more live heap per worker.
 */
function relaxHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=100');
}

export class InferencePool {
  readonly #options: PoolOptions;
  readonly #slots: Slot[] = [];
  readonly #queues = new Map<Lane, (Task | FrameTask)[]>(LANES.map((lane) => [lane, []]));
  #nextId = 1;
  #closing = false;
  #backend = 'unknown';
  #modelVersion = 'unknown';

  private constructor(options: PoolOptions) {
    this.#options = options;
  }

  /** Starts every worker and resolves once all of them loaded and warmed up their models. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    relaxHeapGrowth();
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.size }, () => pool.#spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  get backend(): string {
    return this.#backend;
  }

  get modelVersion(): string {
    return this.#modelVersion;
  }

  /** decode -> locate -> align in a worker; the crops go on to the batcher. */
  prepare(input: FrameInput, source: FrameSource, plan: FramePlan): Promise<PreparedFrame> {
    return this.#enqueue(source, 'prepare', { input, plan }, transferOf(input));
  }

  /**
   * decode -> locate -> align -> classify in one worker. When frames wait (the workers are busy),
   * an idle worker takes up to `maxFramesPerCall` of them at once and classifies all their faces
   * in one batch: a face costs about half as much in a batch of 4 as alone on wasm, so the pool
   * batches exactly when it is loaded, and a lone frame never waits for company.
   */
  analyze(input: FrameInput, source: FrameSource, plan: FramePlan): Promise<AnalysedFrame> {
    if (this.#closing) return Promise.reject(new AppError('not_ready', 'the server is shutting down'));
    const queue = this.#queues.get(source)!;
    if (queue.length >= this.#options.queueLimits[source]) {
      return Promise.reject(new AppError('queue_full', `too many ${source} frames are waiting; try again later`));
    }
    return new Promise((resolve, reject) => {
      queue.push({ frame: { input, plan }, source, enqueuedAt: performance.now(), transfer: transferOf(input), resolve, reject });
      this.#updateDepth();
      this.#dispatch();
    });
  }

  async classify(crops: Float32Array, count: number): Promise<Float32Array> {
    const { probabilities } = await this.#enqueue('classify', 'classify', { crops, count }, [crops.buffer as ArrayBuffer]);
    return probabilities;
  }

  /**
   * Replaces the emotion model in every worker, or in none: each worker first loads and warms up
   * the new model beside the old one; only when all have, each swaps. If any fails to load, every
   * worker drops the candidate, the old model stays everywhere and this rejects.
   */
  async reload(modelDir: string): Promise<string> {
    const slots = [...this.#slots];
    const loaded = await Promise.allSettled(slots.map((slot) => this.#direct(slot, 'load-model', { modelDir })));
    const failure = loaded.find((result) => result.status === 'rejected');
    if (failure) {
      await Promise.allSettled(slots.map((slot) => this.#direct(slot, 'drop-model', {})));
      throw failure.reason;
    }
    const swapped = await Promise.all(slots.map((slot) => this.#direct(slot, 'swap-model', {})));
    this.#modelVersion = swapped[0]?.modelVersion ?? this.#modelVersion;
    return this.#modelVersion;
  }

  /** Live tensors per worker (for leak tests and metrics). */
  memory(): Promise<MemoryResult[]> {
    return Promise.all(this.#slots.map((slot) => this.#direct(slot, 'memory', {})));
  }

  depth(lane: Lane): number {
    return this.#queues.get(lane)!.length;
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const queue of this.#queues.values()) {
      for (const task of queue.splice(0)) task.reject(new AppError('not_ready', 'the server is shutting down'));
    }
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
    this.#slots.length = 0;
  }

  #spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = createTsWorker(WORKER_URL, { workerData: this.#options.init });
      const slot: Slot = { worker, busy: false, pending: new Map() };
      let started = false;
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          started = true;
          this.#backend = reply.backend;
          this.#modelVersion = reply.modelVersion;
          this.#slots.push(slot);
          resolve();
          this.#dispatch();
          return;
        }
        if (reply.type === 'init-failed') {
          reject(new Error(`inference worker failed to start: ${reply.message}`));
          void worker.terminate();
          return;
        }
        const task = slot.pending.get(reply.id);
        if (!task) return;
        slot.pending.delete(reply.id);
        if (task.queued) slot.busy = false;
        if (reply.ok) task.settle(reply);
        else task.reject(new AppError(reply.error.code, reply.error.message));
        this.#dispatch();
      });
      worker.on('error', (error) => {
        this.#options.logger.error({ err: error }, 'inference worker crashed');
        if (!started) reject(error);
      });
      worker.on('exit', (code) => {
        const index = this.#slots.indexOf(slot);
        if (index >= 0) this.#slots.splice(index, 1);
        for (const task of slot.pending.values()) task.reject(new AppError('internal', 'the inference worker stopped'));
        slot.pending.clear();
        if (!started) reject(new Error(`inference worker exited with code ${code} before it was ready`));
        else if (!this.#closing) {
          this.#options.logger.error({ code }, 'inference worker exited, starting a new one');
          this.#spawn().catch((error: unknown) => this.#options.logger.error({ err: error }, 'could not restart an inference worker'));
        }
      });
    });
  }

  /** A task for one call whose promise settles with that call's reply type. */
  #task<K extends CallKind>(
    kind: K,
    request: WorkerCalls[K]['request'],
    transfer: ArrayBuffer[],
    queued: boolean,
    resolve: (value: WorkerCalls[K]['reply']) => void,
    reject: (error: Error) => void,
  ): Task {
    return {
      queued,
      send(worker, id) {
        const message: RequestOf<K> = { ...request, id, kind };
        worker.postMessage(message, transfer);
      },
      settle(reply) {
        if (isResultOf(reply, kind)) resolve(reply.value);
        else reject(new AppError('internal', `the inference worker answered ${reply.kind} to ${kind}`));
      },
      reject,
    };
  }

  #enqueue<K extends CallKind>(lane: Lane, kind: K, request: WorkerCalls[K]['request'], transfer: ArrayBuffer[]): Promise<WorkerCalls[K]['reply']> {
    if (this.#closing) return Promise.reject(new AppError('not_ready', 'the server is shutting down'));
    const queue = this.#queues.get(lane)!;
    if (lane !== 'classify' && queue.length >= this.#options.queueLimits[lane]) {
      return Promise.reject(new AppError('queue_full', `too many ${lane} frames are waiting; try again later`));
    }
    return new Promise((resolve, reject) => {
      queue.push(this.#task(kind, request, transfer, true, resolve, reject));
      this.#updateDepth();
      this.#dispatch();
    });
  }

  /** Control calls bypass the queue: the worker handles them between (or during async parts of) tasks. */
  #direct<K extends CallKind>(slot: Slot, kind: K, request: WorkerCalls[K]['request']): Promise<WorkerCalls[K]['reply']> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const task = this.#task(kind, request, [], false, resolve, reject);
      slot.pending.set(id, task);
      task.send(slot.worker, id);
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy) continue;
      const task = this.#takeNext();
      if (!task) break;
      const id = this.#nextId++;
      slot.busy = true;
      slot.pending.set(id, task);
      task.send(slot.worker, id);
    }
    this.#updateDepth();
  }

  #takeNext(): Task | undefined {
    for (const lane of LANES) {
      const task = this.#queues.get(lane)!.shift();
      if (!task) continue;
      if (!('frame' in task)) return task;
      // Frames waiting in this lane and the lanes after it join this frame's call, most urgent first.
      const frames = [task];
      for (const next of LANES.slice(LANES.indexOf(lane))) {
        const queue = this.#queues.get(next)!;
        for (let head = queue[0]; frames.length < this.#options.maxFramesPerCall && head && 'frame' in head; head = queue[0]) {
          queue.shift();
          frames.push(head);
        }
      }
      return this.#frameCall(frames);
    }
    return undefined;
  }

  /** One `analyze` call for several waiting frames; each frame's promise settles with its own outcome. */
  #frameCall(frames: FrameTask[]): Task {
    const now = performance.now();
    for (const f of frames) batchQueueWaitSeconds.observe({ priority: f.source }, (now - f.enqueuedAt) / 1000);
    const rejectAll = (error: Error): void => frames.forEach((f) => f.reject(error));
    return this.#task(
      'analyze',
      { frames: frames.map((f) => f.frame) },
      frames.flatMap((f) => f.transfer),
      true,
      ({ frames: outcomes }) => {
        if (outcomes.length !== frames.length) return rejectAll(new AppError('internal', `${outcomes.length} answers to ${frames.length} frames`));
        outcomes.forEach((outcome, i) => {
          if (outcome.ok) frames[i]!.resolve(outcome.frame);
          else frames[i]!.reject(new AppError(outcome.error.code, outcome.error.message));
        });
      },
      rejectAll,
    );
  }

  #updateDepth(): void {
    queueDepth.set({ queue: 'frames' }, this.depth('live') + this.depth('image') + this.depth('video'));
  }
}
