/**
 * Gives each face a trackId that stays the same across frames, and smooths its probabilities.
 * Matching is greedy on a cost that mixes box overlap (IoU) and how far the landmarks moved
 * relative to the face size; a face that matches nothing starts a new track, and a track not
 * seen for `maxAgeMs` is closed (a face coming back later gets a new id). One tracker per live
 * participant and per video job. `dominant` is the label of the smoothed probabilities (the one to
 * display, it does not flicker); `emotions` stays the raw per-frame output.
 */
import { dominantEmotion } from '../../contract/emotions.ts';
import { EmaSmoother } from './smooth.ts';
import type { Box, Point } from '../../contract/geometry.ts';
import type { Face } from '../../contract/socket.ts';
import type { ClassifiedFace } from './types.ts';

export interface TrackerOptions {
  /** a track unseen this long is closed */
  maxAgeMs?: number;
  /** pairs with IoU below this and landmarks further than `maxLandmarkShift` do not match */
  minIou?: number;
  /** mean landmark displacement, in face widths, that still counts as the same face */
  maxLandmarkShift?: number;
  /** EMA time constant of the smoothed probabilities (ms) */
  smoothingTauMs?: number;
}

interface Track {
  id: number;
  box: Box;
  landmarks: Point[];
  lastSeenMs: number;
  smoother: EmaSmoother;
}

export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width);
  const y2 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/** Mean landmark displacement in units of the face width (centre distance of boxes when landmarks are missing). */
function landmarkShift(track: Track, face: ClassifiedFace): number {
  const scale = Math.max(1, (track.box.width + face.box.width) / 2);
  if (track.landmarks.length > 0 && track.landmarks.length === face.landmarks.length) {
    let sum = 0;
    for (let i = 0; i < face.landmarks.length; i++) {
      const p = track.landmarks[i]!;
      const q = face.landmarks[i]!;
      sum += Math.hypot(p[0] - q[0], p[1] - q[1]);
    }
    return sum / face.landmarks.length / scale;
  }
  const dx = track.box.x + track.box.width / 2 - (face.box.x + face.box.width / 2);
  const dy = track.box.y + track.box.height / 2 - (face.box.y + face.box.height / 2);
  return Math.hypot(dx, dy) / scale;
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
    this.#maxShift = options.maxLandmarkShift ?? 0.5;
    this.#tauMs = options.smoothingTauMs ?? 400;
  }

  /** Open tracks now (for tests and bounded-memory checks). */
  get activeTracks(): number {
    return this.#tracks.length;
  }

  update(faces: ClassifiedFace[], timestampMs: number): Face[] {
    this.#tracks = this.#tracks.filter((t) => timestampMs - t.lastSeenMs <= this.#maxAgeMs);

    // All candidate pairs, best first: high IoU and small landmark shift.
    const pairs: { track: number; face: number; cost: number }[] = [];
    this.#tracks.forEach((track, ti) => {
      faces.forEach((face, fi) => {
        const overlap = iou(track.box, face.box);
        const shift = landmarkShift(track, face);
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
        track = { id: this.#nextId++, box: face.box, landmarks: face.landmarks, lastSeenMs: timestampMs, smoother: new EmaSmoother(this.#tauMs) };
        this.#tracks.push(track);
      }
      track.box = face.box;
      track.landmarks = face.landmarks;
      track.lastSeenMs = timestampMs;
      const smoothed = track.smoother.update(face.emotions, timestampMs);
      return { trackId: track.id, box: face.box, score: face.score, emotions: face.emotions, dominant: dominantEmotion(smoothed), smoothed };
    });
  }
}
