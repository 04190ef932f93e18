import { AppError } from '../../contract/errors.ts';

/**
 * Dynamic batching as inference servers do it (Triton's max batch size + max queue delay):
 * items from every stream and upload wait in priority queues; a batch runs as soon as it is full,
 * or when its oldest item has waited `maxDelayMs`, or at once when the runner is idle and
 * `maxDelayMs` is 0. Up to `maxConcurrent` batches run at a time (one per worker), and items that
 * arrive while they run gather into the next batch. The queue is bounded: beyond `maxQueue`
 * items, new ones are refused with `queue_full`.
 */

export interface BatcherOptions<In, Out> {
  maxBatchSize: number;
  maxDelayMs: number;
  maxQueue: number;
  maxConcurrent: number;
  /** priorities in order, most urgent first */
  priorities: readonly string[];
  run: (items: In[]) => Promise<Out[]>;
  /** called per batch with its size and each item's wait (ms) and priority */
  onBatch?: (size: number, waits: { priority: string; waitMs: number }[]) => void;
  onDepth?: (depthByPriority: Record<string, number>) => void;
}

interface Pending<In, Out> {
  item: In;
  priority: string;
  enqueuedAt: number;
  resolve: (value: Out) => void;
  reject: (error: Error) => void;
}

export class DynamicBatcher<In, Out> {
  readonly #options: BatcherOptions<In, Out>;
  readonly #queues: Map<string, Pending<In, Out>[]>;
  #size = 0;
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: BatcherOptions<In, Out>) {
    if (options.maxBatchSize < 1 || options.maxConcurrent < 1) throw new Error('batch size and concurrency must be >= 1');
    this.#options = options;
    this.#queues = new Map(options.priorities.map((p) => [p, []]));
  }

  get queued(): number {
    return this.#size;
  }

  /** Items of one caller (e.g. the faces of one frame) enter together, so they share a batch when they fit. */
  submit(items: In[], priority: string): Promise<Out[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.#closed) return Promise.reject(new AppError('not_ready', 'the batcher is closed'));
    const queue = this.#queues.get(priority);
    if (!queue) return Promise.reject(new Error(`unknown priority ${priority}`));
    if (this.#size + items.length > this.#options.maxQueue) {
      return Promise.reject(new AppError('queue_full', 'the classifier queue is full; try again later'));
    }
    const now = performance.now();
    const promises = items.map(
      (item) =>
        new Promise<Out>((resolve, reject) => {
          queue.push({ item, priority, enqueuedAt: now, resolve, reject });
        }),
    );
    this.#size += items.length;
    this.#reportDepth();
    this.#schedule();
    return Promise.all(promises);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const queue of this.#queues.values()) {
      for (const pending of queue.splice(0)) pending.reject(new AppError('not_ready', 'the server is shutting down'));
    }
    this.#size = 0;
  }

  #schedule(): void {
    while (this.#size > 0 && this.#running < this.#options.maxConcurrent) {
      const oldest = this.#oldestWaitMs();
      if (this.#size >= this.#options.maxBatchSize || oldest >= this.#options.maxDelayMs) {
        this.#runBatch();
        continue;
      }
      if (!this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#schedule();
        }, Math.max(0, this.#options.maxDelayMs - oldest));
      }
      return;
    }
  }

  #oldestWaitMs(): number {
    let oldest = Infinity;
    for (const queue of this.#queues.values()) if (queue[0] && queue[0].enqueuedAt < oldest) oldest = queue[0].enqueuedAt;
    return oldest === Infinity ? 0 : performance.now() - oldest;
  }

  #runBatch(): void {
    const batch: Pending<In, Out>[] = [];
    for (const priority of this.#options.priorities) {
      const queue = this.#queues.get(priority)!;
      while (queue.length > 0 && batch.length < this.#options.maxBatchSize) batch.push(queue.shift()!);
    }
    this.#size -= batch.length;
    this.#reportDepth();
    this.#running += 1;
    const now = performance.now();
    this.#options.onBatch?.(
      batch.length,
      batch.map((p) => ({ priority: p.priority, waitMs: now - p.enqueuedAt })),
    );
    const settle = (): void => {
      this.#running -= 1;
      this.#schedule();
    };
    this.#options
      .run(batch.map((p) => p.item))
      .then((outputs) => {
        if (outputs.length !== batch.length) throw new Error(`batch of ${batch.length} gave ${outputs.length} results`);
        batch.forEach((p, i) => p.resolve(outputs[i]!));
      })
      .catch((error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const p of batch) p.reject(failure);
      })
      .finally(settle);
  }

  #reportDepth(): void {
    if (!this.#options.onDepth) return;
    const depth: Record<string, number> = {};
    for (const [priority, queue] of this.#queues) depth[priority] = queue.length;
    this.#options.onDepth(depth);
  }
}
