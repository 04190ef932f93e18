/**
 * The video job queue: job ids run in arrival order, at most `concurrency` at once, with a bounded
 * wait list; a running job is stopped through its AbortSignal when it is deleted or the queue closes.
 */
import { AppError } from '../../contract/errors.ts';

export interface JobQueueOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting beyond the running ones. */
  maxQueued: number;
  /** Runs one job; `signal` aborts when it is cancelled or the queue closes (reason says which). */
  run: (id: string, signal: AbortSignal) => Promise<void>;
  onDepth?: (queued: number, running: number) => void;
}

/** Why a running job was stopped: a DELETE, or the server shutting down (the job resumes on restart). */
export type StopReason = 'deleted' | 'shutdown';

export class JobStoppedError extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason) {
    super(`job stopped: ${reason}`);
    this.name = 'JobStoppedError';
    this.reason = reason;
  }
}

/** FIFO of job ids with bounded concurrency and a bounded wait list (refuses with queue_full). */
export class JobQueue {
  readonly #options: JobQueueOptions;
  readonly #waiting: string[] = [];
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #closed = false;

  constructor(options: JobQueueOptions) {
    this.#options = options;
  }

  /** Whether one more job would be accepted now. */
  hasRoom(): boolean {
    return !this.#closed && (this.#running.size < this.#options.concurrency || this.#waiting.length < this.#options.maxQueued);
  }

  /** Queue a job. `force` skips the bound: for jobs accepted before a restart, already promised. */
  enqueue(id: string, { force = false } = {}): void {
    if (this.#closed) throw new AppError('not_ready', 'the video service is shutting down');
    if (!force && !this.hasRoom()) {
      throw new AppError('queue_full', `too many videos are waiting (${this.#waiting.length}); try again later`);
    }
    this.#waiting.push(id);
    this.#pump();
  }

  /** Remove a waiting job or stop a running one; resolves once it has stopped. */
  async cancel(id: string, reason: StopReason = 'deleted'): Promise<void> {
    const at = this.#waiting.indexOf(id);
    if (at >= 0) {
      this.#waiting.splice(at, 1);
      this.#reportDepth();
    }
    const running = this.#running.get(id);
    if (running) {
      running.controller.abort(new JobStoppedError(reason));
      await running.done;
    }
  }

  /** Stop accepting, forget waiting jobs (they stay queued in the store), stop running ones. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#waiting.length = 0;
    const running = [...this.#running.values()];
    for (const job of running) job.controller.abort(new JobStoppedError('shutdown'));
    await Promise.allSettled(running.map((job) => job.done));
    this.#reportDepth();
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#options.concurrency && this.#waiting.length > 0) {
      const id = this.#waiting.shift()!;
      const controller = new AbortController();
      const done = this.#options
        .run(id, controller.signal)
        .catch(() => undefined) // run() records its own failures
        .finally(() => {
          this.#running.delete(id);
          this.#reportDepth();
          this.#pump();
        });
      this.#running.set(id, { controller, done });
    }
    this.#reportDepth();
  }

  #reportDepth(): void {
    this.#options.onDepth?.(this.#waiting.length, this.#running.size);
  }
}
