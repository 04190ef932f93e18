/**
 * Paces live frames: never more than one unacknowledged frame, and a send interval that follows
 * the measured round trip (smoothed), so a slow server or network gets fewer frames instead of a
 * queue. JPEG quality steps down while round trips stay long and back up when they are short.
 * Pure (the clock is passed in), so it is tested in Node.
 */

/** A FramePacer's settings; any left out come from DEFAULT_PACER_OPTIONS. */
export interface PacerOptions {
  /** fastest rate, frames per second */
  maxFps: number;
  /** slowest rate while the connection works */
  minFps: number;
  /** weight of a new round-trip measurement in the moving average */
  rttWeight: number;
  /** the interval is this multiple of the smoothed round trip (room for the server to idle) */
  headroom: number;
  /** JPEG quality bounds */
  maxQuality: number;
  minQuality: number;
  /** round trips above this lower the quality one step, below half of it raise it */
  slowRttMs: number;
}

export const DEFAULT_PACER_OPTIONS: PacerOptions = {
  maxFps: 10,
  minFps: 1,
  rttWeight: 0.3,
  headroom: 1.15,
  maxQuality: 0.8,
  minQuality: 0.5,
  slowRttMs: 400,
};

export interface PacerStats {
  sent: number;
  acknowledged: number;
  /** frames the server superseded or refused, or whose ack never came */
  dropped: number;
  /** frames refused because the server was not ready (its models were loading): not the client's doing */
  notReady: number;
  /** smoothed round trip (ms); undefined before the first ack */
  rttMs: number | undefined;
  lastRttMs: number | undefined;
  intervalMs: number;
  quality: number;
}

export class FramePacer {
  readonly #options: PacerOptions;
  #inFlight: { seq: number; sentAt: number } | undefined;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #seq = 0;
  #stats: PacerStats;

  constructor(options: Partial<PacerOptions> = {}) {
    this.#options = { ...DEFAULT_PACER_OPTIONS, ...options };
    this.#stats = {
      sent: 0,
      acknowledged: 0,
      dropped: 0,
      notReady: 0,
      rttMs: undefined,
      lastRttMs: undefined,
      intervalMs: 1000 / this.#options.maxFps,
      quality: this.#options.maxQuality,
    };
  }

  get stats(): Readonly<PacerStats> {
    return this.#stats;
  }

  get inFlight(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Milliseconds until the next frame may be sent (0: now); Infinity while one is unacknowledged. */
  delayUntilNext(now: number): number {
    if (this.#inFlight) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.#lastSentAt + this.#stats.intervalMs - now);
  }

  /** Marks a frame as sent and returns its sequence number; throws if one is still unacknowledged. */
  begin(now: number): number {
    if (this.#inFlight) throw new Error('a frame is still waiting for its acknowledgement');
    const seq = this.#seq++;
    this.#inFlight = { seq, sentAt: now };
    this.#lastSentAt = now;
    this.#stats.sent += 1;
    return seq;
  }

  /** The frame `seq` was answered: `ok` false when the server dropped or refused it (`not_ready`: because it was loading). */
  complete(seq: number, now: number, outcome: boolean | 'not_ready'): void {
    if (!this.#inFlight || this.#inFlight.seq !== seq) return;
    const rtt = now - this.#inFlight.sentAt;
    this.#inFlight = undefined;
    if (outcome === true) this.#stats.acknowledged += 1;
    else if (outcome === 'not_ready') this.#stats.notReady += 1;
    else this.#stats.dropped += 1;
    this.#observeRtt(rtt);
  }

  /** The frame `seq` got no answer in time (or the connection dropped): count it, free the slot. */
  abandon(seq: number): void {
    if (!this.#inFlight || this.#inFlight.seq !== seq) return;
    this.#inFlight = undefined;
    this.#stats.dropped += 1;
    // Treat it as slow: halve the rate until acks come back.
    this.#stats.intervalMs = Math.min(1000 / this.#options.minFps, this.#stats.intervalMs * 2);
  }

  /** Forget the in-flight frame without counting it (after a reconnect). */
  reset(): void {
    this.#inFlight = undefined;
  }

  #observeRtt(rtt: number): void {
    const o = this.#options;
    const smoothed = this.#stats.rttMs === undefined ? rtt : this.#stats.rttMs + o.rttWeight * (rtt - this.#stats.rttMs);
    this.#stats.rttMs = smoothed;
    this.#stats.lastRttMs = rtt;
    this.#stats.intervalMs = clamp(smoothed * o.headroom, 1000 / o.maxFps, 1000 / o.minFps);
    const step = 0.05;
    if (smoothed > o.slowRttMs) this.#stats.quality = Math.max(o.minQuality, round2(this.#stats.quality - step));
    else if (smoothed < o.slowRttMs / 2) this.#stats.quality = Math.min(o.maxQuality, round2(this.#stats.quality + step));
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
