/**
 * Gives each face a trackId that stays the same across frames, and smooths its probabilities.
 * Matching is greedy on a cost that mixes box overlap (IoU) and how far the eyes and mouth moved
 * relative to the face size; a face that matches nothing starts a new track, and a track not
 * seen for `maxAgeMs` is closed (a face coming back later gets a new id). One tracker per live
 * participant and per video job. `dominant` is the label of the smoothed probabilities (the one to
 * display, it does not flicker); `emotions` stays the raw per-frame output.
 */
import { dominantEmotion } from '../../contract/emotions.ts';
import { EmaSmoother } from './smooth.ts';
import { type Box, iou, type Point } from '../../contract/geometry.ts';
import type { Face } from '../../contract/socket.ts';
import type { FacePoints } from '../../contract/face-points.ts';
import type { ClassifiedFace } from './types.ts';

export interface TrackerOptions {
  /** a track unseen this long is closed */
  maxAgeMs?: number;
  /** pairs with IoU below this and eye/mouth points further than `maxPointShift` do not match */
  minIou?: number;
  /** mean displacement of the eye and mouth centres, in face widths, that still counts as the same face */
  maxPointShift?: number;
  /** EMA time constant of the smoothed probabilities (ms) */
  smoothingTauMs?: number;
}

interface Track {
  id: number;
  box: Box;
  points: FacePoints;
  lastSeenMs: number;
  smoother: EmaSmoother;
}

/** Mean displacement of the eye and mouth centres, in units of the face width. */
function pointShift(track: Track, face: ClassifiedFace): number {
  const scale = Math.max(1, (track.box.width + face.box.width) / 2);
  const moved = (p: Point, q: Point): number => Math.hypot(p[0] - q[0], p[1] - q[1]);
  const { leftEye, rightEye, mouth } = face.points;
  return (moved(track.points.leftEye, leftEye) + moved(track.points.rightEye, rightEye) + moved(track.points.mouth, mouth)) / 3 / scale;
}

export class FaceTracker {
  readonly #maxAgeMs: number;
  readonly #minIou: number;
  readonly #maxShift: number;
  readonly #tauMs: number;
  #tracks: Track[] = [];
  #nextId = 1;

  constructor(options: TrackerOptions = {}) {
    this.#maxAgeMs = options.maxAgeMs ?? 1500;
    this.#minIou = options.minIou ?? 0.2;
    this.#maxShift = options.maxPointShift ?? 0.5;
    this.#tauMs = options.smoothingTauMs ?? 400;
  }

  /** Open tracks now (for tests and bounded-memory checks). */
  get activeTracks(): number {
    return this.#tracks.length;
  }

  /** Closes every track (a scene cut: whoever is in the next shot gets new ids). */
  endAllTracks(): void {
    this.#tracks = [];
  }

  update(faces: ClassifiedFace[], timestampMs: number): Face[] {
    this.#tracks = this.#tracks.filter((t) => timestampMs - t.lastSeenMs <= this.#maxAgeMs);

    // All candidate pairs, best first: high IoU and small landmark shift.
    const pairs: { track: number; face: number; cost: number }[] = [];
    this.#tracks.forEach((track, ti) => {
      faces.forEach((face, fi) => {
        const overlap = iou(track.box, face.box);
        const shift = pointShift(track, face);
        if (overlap < this.#minIou && shift > this.#maxShift) return;
        pairs.push({ track: ti, face: fi, cost: (1 - overlap) + shift });
      });
    });
    pairs.sort((a, b) => a.cost - b.cost);

    const trackOfFace = new Map<number, Track>();
    const usedTracks = new Set<number>();
    for (const pair of pairs) {
      if (usedTracks.has(pair.track) || trackOfFace.has(pair.face)) continue;
      usedTracks.add(pair.track);
      trackOfFace.set(pair.face, this.#tracks[pair.track]!);
    }

    return faces.map((face, fi) => {
      let track = trackOfFace.get(fi);
      if (!track) {
        track = { id: this.#nextId++, box: face.box, points: face.points, lastSeenMs: timestampMs, smoother: new EmaSmoother(this.#tauMs) };
        this.#tracks.push(track);
      }
      track.box = face.box;
      track.points = face.points;
      track.lastSeenMs = timestampMs;
      const smoothed = track.smoother.update(face.emotions, timestampMs);
      return { trackId: track.id, box: face.box, score: face.score, emotions: face.emotions, dominant: dominantEmotion(smoothed), smoothed, origin: face.origin };
    });
  }
}
