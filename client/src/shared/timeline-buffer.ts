/**
 * Bounded per-track emotion series for the live charts: each track keeps at most `maxSamples`
 * points, and at most `maxTracks` tracks are kept (the least recently updated goes first), so a
 * page left open for hours does not grow. Pure, tested in Node.
 */
import type { Emotion, EmotionScores } from '../../../contract/socket.ts';

/** One sample of a track. */
export interface TimelinePoint {
  /** seconds since the buffer's origin */
  t: number;
  scores: EmotionScores;
  dominant: Emotion;
}

export interface TrackSeries {
  trackId: number;
  points: TimelinePoint[];
  lastUpdate: number;
}

export class TimelineBuffer {
  readonly #maxSamples: number;
  readonly #maxTracks: number;
  readonly #tracks = new Map<number, TrackSeries>();
  #origin: number | undefined;

  constructor(options: { maxSamples?: number; maxTracks?: number } = {}) {
    this.#maxSamples = options.maxSamples ?? 300;
    this.#maxTracks = options.maxTracks ?? 8;
  }

  /** Adds one sample for a track at time `ts` (ms). Returns the series. */
  add(trackId: number, ts: number, scores: EmotionScores, dominant: Emotion): TrackSeries {
    this.#origin ??= ts;
    let series = this.#tracks.get(trackId);
    if (!series) {
      series = { trackId, points: [], lastUpdate: ts };
      this.#tracks.set(trackId, series);
      this.#evict();
    }
    series.points.push({ t: (ts - this.#origin) / 1000, scores, dominant });
    if (series.points.length > this.#maxSamples) series.points.splice(0, series.points.length - this.#maxSamples);
    series.lastUpdate = ts;
    return series;
  }

  /** Tracks ordered by id (stable order on screen). */
  tracks(): TrackSeries[] {
    return [...this.#tracks.values()].sort((a, b) => a.trackId - b.trackId);
  }

  get size(): number {
    return this.#tracks.size;
  }

  /** Total points held (for tests and the bound). */
  get pointCount(): number {
    let n = 0;
    for (const s of this.#tracks.values()) n += s.points.length;
    return n;
  }

  clear(): void {
    this.#tracks.clear();
    this.#origin = undefined;
  }

  #evict(): void {
    while (this.#tracks.size > this.#maxTracks) {
      let oldest: TrackSeries | undefined;
      for (const s of this.#tracks.values()) if (!oldest || s.lastUpdate < oldest.lastUpdate) oldest = s;
      if (!oldest) return;
      this.#tracks.delete(oldest.trackId);
    }
  }
}
