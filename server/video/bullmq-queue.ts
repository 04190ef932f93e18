/**
 * The video job queue on BullMQ (REDIS_URL): any node adds jobs, every node whose NODE_ROLE runs
 * jobs (`all`, `worker`) has a Worker taking up to VIDEO_JOB_CONCURRENCY of them at once.
 *
 * - A running job holds BullMQ's lock, renewed by its Worker every half VIDEO_JOB_LOCK_SEC; a job
 *   is never taken by two nodes at once. A node killed mid-job stops renewing: after the lock
 *   runs out, the stalled-job check of another Worker (every VIDEO_JOB_LOCK_SEC) puts it back in
 *   the wait list and a node with a free slot runs it again from scratch (the service clears the
 *   samples of the failed attempt when it starts, so none is duplicated).
 * - Attempts: the job record counts starts (VIDEO_MAX_ATTEMPTS, as on one node). BullMQ's own
 *   limits are set to the same number: `attempts` bounds the runs that failed (a runner that lost
 *   Redis); once BullMQ gives up (its Worker's `failed` event with `finishedOn` set, not the same
 *   event for a run it retries) the record is failed with BullMQ's reason. Its stalled limit fails
 *   a job inside Redis without that event; the record's count is reached first in practice.
 * - Shutdown (SIGTERM): the node's running jobs are stopped and put back at once (moved to
 *   delayed with no delay), for another node or the next start.
 * - Cancel: a job waiting is removed from BullMQ; one running on this node is aborted here; one
 *   running on another node stops there when its next sample write finds the record gone.
 * - BullMQ's job id is the record's id, so adding a job twice adds it once (`enqueue` after a
 *   crash between the record and the add, the service's reconcile, a retried upload).
 * - Redis away: the calls the routes make (`hasRoom`, `enqueue`, `cancel`) are refused with
 *   AppError `not_ready` at once (the Queue's connection has no offline queue and a command
 *   timeout; `isUp` says whether the node reaches Redis) instead of waiting for Redis to return.
 *   The Worker's own connection keeps retrying and takes jobs again when Redis is back. A job
 *   whose runner lost Redis fails its BullMQ run (RedisUnreachableError) without a failed
 *   record: BullMQ runs it again (an attempt) once Redis answers.
 */
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import { JobStoppedError, type StopReason } from './jobs.ts';
import { RedisUnreachableError, unreachableUnlessReply } from './redis-job-store.ts';
import type { VideoQueue } from './video-queue.ts';

export const VIDEO_QUEUE_NAME = 'moodwire-video';

export interface BullVideoQueueOptions {
  redisUrl: string;
  nodeId: string;
  /** Run a Worker on this node (NODE_ROLE all or worker). */
  runJobs: boolean;
  concurrency: number;
  maxQueued: number;
  maxAttempts: number;
  /** BullMQ lock duration; the stalled check runs this often too. */
  lockMs: number;
  run: (id: string, signal: AbortSignal) => Promise<void>;
  /** BullMQ gave up on a job (its runs failed `maxAttempts` times): record why. */
  onGivenUp: (id: string, reason: string) => Promise<void>;
  /** Whether this node reaches Redis now (RedisConnection.up): calls are refused not_ready at once while it does not. */
  isUp: () => boolean;
  logger: Logger;
}

/** The longest a queue call waits for Redis before it is refused not_ready (the store's command timeout too). */
const QUEUE_CALL_TIMEOUT_MS = 2000;

interface JobData {
  id: string;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
}

export class BullVideoQueue implements VideoQueue {
  readonly #options: BullVideoQueueOptions;
  readonly #queue: Queue<JobData>;
  readonly #worker: Worker<JobData> | undefined;
  readonly #connections: Redis[] = [];
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #closed = false;

  constructor(options: BullVideoQueueOptions) {
    this.#options = options;
    const connect = (queueOnly: boolean): Redis => {
      // The Worker's blocking commands need maxRetriesPerRequest: null (and wait for Redis to
      // return); the Queue's calls answer requests, so they fail at once while Redis is away.
      const redis = new Redis(
        options.redisUrl,
        queueOnly
          ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: QUEUE_CALL_TIMEOUT_MS, connectionName: `moodwire:${options.nodeId}:video-queue` }
          : { maxRetriesPerRequest: null, connectionName: `moodwire:${options.nodeId}:video` },
      );
      redis.on('error', () => undefined); // RedisConnection reports Redis trouble
      this.#connections.push(redis);
      return redis;
    };
    this.#queue = new Queue<JobData>(VIDEO_QUEUE_NAME, { connection: connect(true) });
    this.#queue.on('error', () => undefined);
    if (options.runJobs) {
      this.#worker = new Worker<JobData>(VIDEO_QUEUE_NAME, (job, token) => this.#process(job, token), {
        connection: connect(false),
        concurrency: options.concurrency,
        lockDuration: options.lockMs,
        stalledInterval: options.lockMs,
        maxStalledCount: options.maxAttempts,
        name: options.nodeId,
      });
      this.#worker.on('error', (error) => options.logger.warn({ err: { message: error.message } }, 'video worker: Redis error'));
      this.#worker.on('failed', (job, error) => {
        if (!job || error instanceof DelayedError || error.name === 'DelayedError') return;
        // Emitted for every failed run: BullMQ retries it (attempts left) unless it set finishedOn.
        if (!job.finishedOn) {
          options.logger.warn({ jobId: job.data.id, reason: error.message, attemptsMade: job.attemptsMade }, 'video job run failed: BullMQ runs it again');
          return;
        }
        options.logger.warn({ jobId: job.data.id, reason: error.message }, 'BullMQ gave up on a video job');
        options.onGivenUp(job.data.id, error.message).catch(() => undefined);
      });
      this.#worker.on('stalled', (jobId) => options.logger.warn({ jobId }, 'video job stalled (its node stopped renewing the lock): queued again'));
    }
  }

  async #process(job: Job<JobData>, token: string | undefined): Promise<void> {
    const id = job.data.id;
    const controller = new AbortController();
    const done = this.#options.run(id, controller.signal);
    this.#running.set(id, { controller, done });
    try {
      await done;
    } finally {
      this.#running.delete(id);
    }
    const reason = controller.signal.aborted ? controller.signal.reason : undefined;
    if (reason instanceof JobStoppedError && reason.reason === 'shutdown') {
      // Back in the queue at once for another node (or this one once restarted).
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
  }

  /**
   * One exchange with Redis through the Queue: refused not_ready at once while this node does not
   * reach Redis, and when Redis fails or does not answer within QUEUE_CALL_TIMEOUT_MS (the
   * Queue's first connection may still be waiting for a Redis that was down at start).
   */
  async #redis<T>(exchange: () => Promise<T>): Promise<T> {
    if (!this.#options.isUp()) throw new RedisUnreachableError('this node has lost its connection');
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        exchange(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${QUEUE_CALL_TIMEOUT_MS} ms`)), QUEUE_CALL_TIMEOUT_MS);
        }),
      ]);
    } catch (error) {
      throw unreachableUnlessReply(error);
    } finally {
      clearTimeout(timer);
    }
  }

  async hasRoom(): Promise<boolean> {
    if (this.#closed) return false;
    // Jobs count as waiting until a Worker takes them; with VIDEO_MAX_QUEUED_JOBS=0 one may wait.
    return (await this.#redis(() => this.#queue.getWaitingCount())) < Math.max(1, this.#options.maxQueued);
  }

  /** Adds job `id` unless BullMQ already has a job with this id (waiting, delayed or running): adding twice adds once. */
  async enqueue(id: string, { force = false } = {}): Promise<void> {
    if (this.#closed) throw new AppError('not_ready', 'the video service is shutting down');
    if (!force && !(await this.hasRoom())) throw new AppError('queue_full', 'too many videos are waiting; try again later');
    await this.#redis(() =>
      this.#queue.add('analyse', { id }, { jobId: id, attempts: this.#options.maxAttempts, removeOnComplete: true, removeOnFail: true }),
    );
  }

  /** Of `ids`, those BullMQ has no job for (none waiting, delayed or running). */
  async withoutJob(ids: string[]): Promise<string[]> {
    const states = await this.#redis(() => Promise.all(ids.map((id) => this.#queue.getJobState(id))));
    return ids.filter((_id, i) => states[i] === 'unknown');
  }

  async cancel(id: string, reason: StopReason = 'deleted'): Promise<void> {
    const local = this.#running.get(id);
    if (local) {
      local.controller.abort(new JobStoppedError(reason));
      await local.done.catch(() => undefined);
      return;
    }
    const job = await this.#redis(() => this.#queue.getJob(id));
    // A job locked by another node's Worker cannot be removed: it stops there (its record is gone).
    await job?.remove().catch(() => undefined);
  }

  /** Cluster-wide counts from BullMQ (for /metrics). */
  async counts(): Promise<QueueCounts> {
    const counts = await this.#redis(() => this.#queue.getJobCounts('waiting', 'active', 'delayed'));
    return { waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0 };
  }

  /** Jobs this node is running now. */
  get runningHere(): number {
    return this.#running.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running.size > 0) this.#options.logger.info({ jobIds: [...this.#running.keys()] }, 'stopping the video jobs running here: they go back to the queue');
    for (const job of this.#running.values()) job.controller.abort(new JobStoppedError('shutdown'));
    await this.#worker?.close().catch(() => undefined);
    await this.#queue.close().catch(() => undefined);
    for (const redis of this.#connections) redis.disconnect();
  }
}
