import type { Worker } from 'node:worker_threads';
import { createTsWorker } from '../../contract/ts-worker.ts';
import type { Logger } from 'pino';
import type { DetectorSpec } from '../pipeline/detect.ts';
import { AppError } from '../../contract/errors.ts';
import { queueDepth } from '../metrics/metrics.ts';
import type { FrameSource } from '../pipeline/types.ts';
import type {
  ClassifyResult,
  FrameInput,
  MemoryResult,
  PreparedFrame,
  ReloadResult,
  WorkerInit,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol.ts';

/**
 * A fixed set of inference worker threads and one priority queue in front of them.
 * Each worker runs one task at a time; an idle worker takes the most urgent task:
 * classifier batches first (they finish frames already paid for), then live frames, then
 * uploads, then video frames, so files never starve live streams. Each frame queue is bounded
 * and refuses work with `queue_full` instead of growing.
 */

type Lane = 'classify' | FrameSource;
const LANES: readonly Lane[] = ['classify', 'live', 'upload', 'video'];

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
type TaskMessage = DistributiveOmit<WorkerRequest, 'id'>;

interface Task {
  message: TaskMessage;
  transfer: ArrayBuffer[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  backend: string;
  pending: Map<number, Task>;
}

export interface PoolOptions {
  size: number;
  init: WorkerInit;
  /** frames waiting per source before new ones are refused */
  queueLimits: Record<FrameSource, number>;
  logger: Logger;
}

const WORKER_URL = new URL('./worker.ts', import.meta.url);

export class InferencePool {
  readonly #options: PoolOptions;
  readonly #slots: Slot[] = [];
  readonly #queues = new Map<Lane, Task[]>(LANES.map((lane) => [lane, []]));
  #nextId = 1;
  #closing = false;
  #backend = 'unknown';
  #modelVersion = 'unknown';

  private constructor(options: PoolOptions) {
    this.#options = options;
  }

  /** Starts every worker and resolves once all of them loaded and warmed up their models. */
  static async start(options: PoolOptions): Promise<InferencePool> {
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

  prepare(input: FrameInput, source: FrameSource, detector: DetectorSpec): Promise<PreparedFrame> {
    const transfer = input.kind === 'encoded' ? [input.bytes.buffer as ArrayBuffer] : [input.data.buffer as ArrayBuffer];
    return this.#enqueue(source, { type: 'prepare', input, detector }, transfer) as Promise<PreparedFrame>;
  }

  classify(crops: Float32Array, count: number): Promise<ClassifyResult> {
    return this.#enqueue('classify', { type: 'classify', crops, count }, [crops.buffer as ArrayBuffer]) as Promise<ClassifyResult>;
  }

  /**
   * Loads a new emotion model in every worker; each swaps only after its copy loaded and warmed
   * up, and batches running meanwhile finish on the old one. Rejects (keeping the old model) if
   * any worker fails; workers that already swapped keep the new one, which is valid as well.
   */
  async reload(modelDir: string): Promise<string> {
    const results = await Promise.all(this.#slots.map((slot) => this.#direct(slot, { type: 'reload', modelDir }) as Promise<ReloadResult>));
    this.#modelVersion = results[0]?.modelVersion ?? this.#modelVersion;
    return this.#modelVersion;
  }

  /** Live tensors per worker (for leak tests and metrics). */
  memory(): Promise<MemoryResult[]> {
    return Promise.all(this.#slots.map((slot) => this.#direct(slot, { type: 'memory' }) as Promise<MemoryResult>));
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
      const slot: Slot = { worker, busy: false, backend: 'unknown', pending: new Map() };
      let started = false;
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          started = true;
          slot.backend = reply.backend;
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
        if (task.message.type === 'prepare' || task.message.type === 'classify') slot.busy = false;
        if (reply.ok) task.resolve(reply.value);
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

  #enqueue(lane: Lane, message: TaskMessage, transfer: ArrayBuffer[]): Promise<unknown> {
    if (this.#closing) return Promise.reject(new AppError('not_ready', 'the server is shutting down'));
    const queue = this.#queues.get(lane)!;
    if (lane !== 'classify' && queue.length >= this.#options.queueLimits[lane]) {
      return Promise.reject(new AppError('queue_full', `too many ${lane} frames are waiting; try again later`));
    }
    return new Promise((resolve, reject) => {
      queue.push({ message, transfer, resolve, reject });
      this.#updateDepth();
      this.#dispatch();
    });
  }

  /** Control messages bypass the queue: the worker handles them between (or during async parts of) tasks. */
  #direct(slot: Slot, message: TaskMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      slot.pending.set(id, { message, transfer: [], resolve, reject });
      slot.worker.postMessage({ ...message, id } as WorkerRequest);
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
      slot.worker.postMessage({ ...task.message, id } as WorkerRequest, task.transfer);
    }
    this.#updateDepth();
  }

  #takeNext(): Task | undefined {
    for (const lane of LANES) {
      const task = this.#queues.get(lane)!.shift();
      if (task) return task;
    }
    return undefined;
  }

  #updateDepth(): void {
    queueDepth.set({ queue: 'frames' }, this.depth('live') + this.depth('upload') + this.depth('video'));
  }
}
