import type { Worker } from 'node:worker_threads';
import { createTsWorker } from '../contract/ts-worker.ts';
import type { CoordinatorMessage, WorkerMessage } from './worker-protocol.ts';

/**
 * The coordinator's handle on one training worker: each request gets the next reply, in order
 * (workers handle messages strictly one at a time).
 */
export class Replica {
  readonly #worker: Worker;
  readonly #pending: { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void }[] = [];
  #failure: Error | undefined;

  constructor() {
    this.#worker = createTsWorker(new URL('./worker.ts', import.meta.url));
    this.#worker.on('message', (message: WorkerMessage) => {
      const waiter = this.#pending.shift();
      if (!waiter) return;
      if (message.type === 'error') waiter.reject(new Error(`training worker failed: ${message.message}`));
      else waiter.resolve(message);
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => this.#fail(new Error(`training worker exited with code ${code}`)));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#pending.splice(0)) waiter.reject(error);
  }

  request<T extends WorkerMessage['type']>(message: CoordinatorMessage, expect: T, transfer: ArrayBuffer[] = []): Promise<Extract<WorkerMessage, { type: T }>> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.push({
        resolve: (m) => (m.type === expect ? resolve(m as Extract<WorkerMessage, { type: T }>) : reject(new Error(`expected ${expect}, got ${m.type}`))),
        reject,
      });
      this.#worker.postMessage(message, transfer);
    });
  }

  async close(): Promise<void> {
    this.#failure ??= new Error('closed');
    await this.#worker.terminate();
  }
}
