/**
 * What the video service and routes need from a job queue: the in-process `JobQueue` (one node,
 * jobs.ts) or BullMQ on Redis (REDIS_URL, bullmq-queue.ts).
 */
import type { JobQueue, StopReason } from './jobs.ts';

export interface VideoQueue {
  /** Whether one more job would be accepted now (VIDEO_MAX_QUEUED_JOBS). */
  hasRoom(): Promise<boolean>;
  /** Queue a job; refuses queue_full when there is no room, unless `force` (jobs accepted before a restart). */
  enqueue(id: string, options?: { force?: boolean }): Promise<void>;
  /** Remove a waiting job or stop a running one; resolves once it has stopped (on this node). */
  cancel(id: string, reason?: StopReason): Promise<void>;
  close(): Promise<void>;
}

/** The in-process queue behind the VideoQueue interface. */
export class LocalVideoQueue implements VideoQueue {
  constructor(readonly queue: JobQueue) {}
  async hasRoom(): Promise<boolean> {
    return this.queue.hasRoom();
  }
  async enqueue(id: string, options: { force?: boolean } = {}): Promise<void> {
    this.queue.enqueue(id, options);
  }
  cancel(id: string, reason?: StopReason): Promise<void> {
    return this.queue.cancel(id, reason);
  }
  close(): Promise<void> {
    return this.queue.close();
  }
}
