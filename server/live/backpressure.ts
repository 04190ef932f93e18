/**
 * Per-socket backpressure for live frames: at most one frame in flight and one waiting.
 * A newer frame replaces the waiting one ("latest frame wins"); the replaced frame is handed to
 * `onDropped` so its sender gets an explicit `frame_dropped` answer. Nothing queues without bound.
 */
export class LatestFrameGate<T> {
  readonly #process: (item: T) => Promise<void>;
  readonly #onDropped: (item: T, reason: 'superseded' | 'disconnected') => void;
  #busy = false;
  #waiting: T | undefined;
  #closed = false;

  constructor(process: (item: T) => Promise<void>, onDropped: (item: T, reason: 'superseded' | 'disconnected') => void) {
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
    if (this.#closed) {
      this.#onDropped(item, 'disconnected');
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

  /** Drops the waiting frame; the one in flight still finishes. */
  close(): void {
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) this.#onDropped(waiting, 'disconnected');
  }

  #run(item: T): void {
    this.#busy = true;
    this.#process(item)
      .catch(() => undefined) // process answers its own errors; the gate only sequences
      .finally(() => {
        this.#busy = false;
        const next = this.#waiting;
        this.#waiting = undefined;
        if (next !== undefined && !this.#closed) this.#run(next);
      });
  }
}
