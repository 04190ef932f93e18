/**
 * Uploads arriving at once, per client (`limitKey(caller)`): a slot is taken when the request
 * reaches the route, before its body is read, and given back once the body is stored or refused,
 * or when the connection closes (an aborted upload). The map only holds clients with a slot taken.
 */
export class UploadSlots {
  readonly #max: number;
  readonly #taken = new Map<string, number>();

  constructor(maxPerClient: number) {
    this.#max = maxPerClient;
  }

  /** Takes a slot for `key`; returns its release (idempotent), or undefined when the client has none free. */
  acquire(key: string): (() => void) | undefined {
    const now = this.#taken.get(key) ?? 0;
    if (now >= this.#max) return undefined;
    this.#taken.set(key, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#taken.get(key) ?? 1) - 1;
      if (left <= 0) this.#taken.delete(key);
      else this.#taken.set(key, left);
    };
  }

  /** Slots taken by `key` now. */
  inUse(key: string): number {
    return this.#taken.get(key) ?? 0;
  }

  /** Clients holding at least one slot (the map's size). */
  get clients(): number {
    return this.#taken.size;
  }
}
