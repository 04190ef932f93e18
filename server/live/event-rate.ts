/**
 * Events per second one socket may send: a token bucket holding one second's worth (bursts up to
 * `perSecond` pass, then `perSecond` a second). Per socket and synchronous, so frames keep their
 * order; a socket lives on one node, so nothing here needs sharing across nodes.
 */
export class EventRate {
  readonly perSecond: number;
  #tokens: number;
  #last = performance.now();

  constructor(perSecond: number) {
    this.perSecond = perSecond;
    this.#tokens = perSecond;
  }

  /** Whether one more event may pass now. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.perSecond, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
