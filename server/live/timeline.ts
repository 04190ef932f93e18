/**
 * One participant's emotion history, per track, bounded twice: the last `maxSamples` samples of
 * each track and the `maxTracks` most recently seen tracks (older ones are dropped whole).
 */
import type { Face } from '../../contract/socket.ts';
import type { TimelineSample, TrackTimeline } from '../../contract/socket.ts';

export class ParticipantTimelines {
  readonly #maxSamples: number;
  readonly #maxTracks: number;
  /** Map keeps insertion order; a track is re-inserted when seen, so the first one is the stalest. */
  readonly #tracks = new Map<number, TimelineSample[]>();

  constructor(maxSamples: number, maxTracks: number) {
    this.#maxSamples = maxSamples;
    this.#maxTracks = maxTracks;
  }

  add(faces: Face[], seq: number, ts: number): void {
    for (const face of faces) {
      const samples = this.#tracks.get(face.trackId) ?? [];
      this.#tracks.delete(face.trackId);
      this.#tracks.set(face.trackId, samples);
      samples.push({ ts, seq, dominant: face.dominant, smoothed: face.smoothed });
      if (samples.length > this.#maxSamples) samples.splice(0, samples.length - this.#maxSamples);
    }
    while (this.#tracks.size > this.#maxTracks) {
      const stalest = this.#tracks.keys().next().value as number;
      this.#tracks.delete(stalest);
    }
  }

  snapshot(sinceTs?: number): TrackTimeline[] {
    return [...this.#tracks.entries()]
      .map(([trackId, samples]) => ({
        trackId,
        samples: sinceTs === undefined ? [...samples] : samples.filter((s) => s.ts > sinceTs),
      }))
      .sort((a, b) => a.trackId - b.trackId);
  }
}
