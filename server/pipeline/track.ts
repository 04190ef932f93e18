/**
 * Gives each face a trackId that stays the same across frames, and smooths its probabilities.
 * Matching is greedy on a cost that mixes box overlap (IoU) and how far the eyes and mouth moved
 * relative to the face size; a face that matches nothing starts a new track, and a track not
 * seen for `maxAgeMs` is closed (a face coming back later gets a new id). One tracker per live
 * participant and per video job. `emotions` stays the raw per-frame output; `smoothed` is its
 * moving average. `dominant`, the label to display, follows the top of `smoothed` with hysteresis:
 * it changes only when another label leads by `switchMargin` and the current one has been shown
 * for `minDwellMs`, so a label never flips back and forth between two close scores. `uncertain`
 * says not to show a label: the track has a single sample yet, or the shown label's smoothed
 * probability is below `minConfidence`.
 */
import { dominantEmotion, type Emotion, type EmotionScores } from '../../contract/emotions.ts';
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

/**
 * Label hysteresis and abstention. On groups-pan.mp4 at 5 fps the plain argmax of `smoothed` made
 * 6 switches in 214 samples, 1 of them a one-sample blip.
 */
export const LABEL_RULES = { switchMargin: 0.05, minDwellMs: 600, minConfidence: 0.35 } as const;

interface Track {
  id: number;
  box: Box;
  points: FacePoints;
  lastSeenMs: number;
  smoother: EmaSmoother;
  samples: number;
  /** the label on display and since when */
  shown?: { label: Emotion; sinceMs: number };
}

/** The label to display after this sample (see the header). */
function nextLabel(track: Track, smoothed: EmotionScores, timestampMs: number): Emotion {
  const leader = dominantEmotion(smoothed);
  const shown = track.shown;
  // The first sample's label is never shown (uncertain), so the second picks freely.
  if (!shown || track.samples <= 2) return leader;
  const clearLead = smoothed[leader] >= smoothed[shown.label] + LABEL_RULES.switchMargin;
  return leader !== shown.label && clearLead && timestampMs - shown.sinceMs >= LABEL_RULES.minDwellMs ? leader : shown.label;
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
        track = { id: this.#nextId++, box: face.box, points: face.points, lastSeenMs: timestampMs, smoother: new EmaSmoother(this.#tauMs), samples: 0 };
        this.#tracks.push(track);
      }
      track.box = face.box;
      track.points = face.points;
      track.lastSeenMs = timestampMs;
      const smoothed = track.smoother.update(face.emotions, timestampMs);
      track.samples += 1;
      const label = nextLabel(track, smoothed, timestampMs);
      if (label !== track.shown?.label) track.shown = { label, sinceMs: timestampMs };
      const uncertain = track.samples < 2 || smoothed[label] < LABEL_RULES.minConfidence;
      return { trackId: track.id, box: face.box, score: face.score, emotions: face.emotions, dominant: label, smoothed, origin: face.origin, uncertain };
    });
  }
}
