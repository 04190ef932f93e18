/**
 * Why a frame was not processed: replaced by a newer one, its connection closed, or the server is
 * shutting down (the gate was closed for that reason).
 */
export type DropReason = 'superseded' | 'disconnected' | 'shutting_down';

/**
 * Per-socket backpressure for live frames: at most one frame in flight and one waiting.
 * A newer frame replaces the waiting one ("latest frame wins"); the replaced frame is handed to
 * `onDropped` so its sender gets an explicit `frame_dropped` answer. Nothing queues without bound.
 * `idle()` tells when the frame in flight (and the one waiting) are done: shutdown waits on it.
 */
export class LatestFrameGate<T> {
  readonly #process: (item: T) => Promise<void>;
  readonly #onDropped: (item: T, reason: DropReason) => void;
  #busy = false;
  #waiting: T | undefined;
  /** undefined while open; else the reason every later offer is dropped with */
  #closed: 'disconnected' | 'shutting_down' | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(process: (item: T) => Promise<void>, onDropped: (item: T, reason: DropReason) => void) {
    this.#process = process;
    this.#onDropped = onDropped;
  }

  get inFlight(): boolean {
    return this.#busy;
  }

  get waiting(): boolean {
    return this.#waiting !== undefined;
  }

  offer(item: T): void {
    if (this.#closed !== undefined) {
      this.#onDropped(item, this.#closed);
      return;
    }
    if (!this.#busy) {
      this.#run(item);
      return;
    }
    const replaced = this.#waiting;
    this.#waiting = item;
    if (replaced !== undefined) this.#onDropped(replaced, 'superseded');
  }

  /**
   * Drops the waiting frame (and every later offer) with `reason`; the one in flight still
   * finishes. A second close keeps the first reason.
   */
  close(reason: 'disconnected' | 'shutting_down' = 'disconnected'): void {
    this.#closed ??= reason;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) this.#onDropped(waiting, this.#closed);
  }

  /** Resolves once nothing is in flight or waiting (at once when that is so already). */
  idle(): Promise<void> {
    if (!this.#busy && this.#waiting === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #run(item: T): void {
    this.#busy = true;
    this.#process(item)
      .catch(() => undefined) // process answers its own errors; the gate only sequences
      .finally(() => {
        this.#busy = false;
        const next = this.#waiting;
        this.#waiting = undefined;
        if (next !== undefined && this.#closed === undefined) {
          this.#run(next);
          return;
        }
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      });
  }
}
