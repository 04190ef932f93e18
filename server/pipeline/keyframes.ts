/**
 * When a live stream runs the full-frame detector (a keyframe) instead of tracking its faces
 * from the previous frame: the first frame, then every `intervalFrames` frames or `intervalMs`
 * milliseconds, whichever comes first, and whenever the stream has no face to track. A face lost
 * by the tracker and a scene cut also force a keyframe, on the frame where they happen; that is
 * decided by the worker (it sees the pixels) and reported back through `record`.
 *
 * The first scheduled keyframe after a stream's first frame comes after a random share of the
 * interval (`phase`), so streams that start together do not run their detectors on the same tick
 * ever after: ten clients keyframing in one 200 ms window queued ~450 ms of detector work at once.
 */
/**
 * Why a frame ran the detector: `planned` (the schedule, nothing to track, or not a live stream),
 * `lost` (the tracker lost a face), `cut` (the scene changed).
 */
export type KeyframeReason = 'planned' | 'lost' | 'cut';

export interface KeyframePolicy {
  /** at most this many frames from one keyframe to the next (1 = detect every frame) */
  intervalFrames: number;
  /** at most this many milliseconds from one keyframe to the next */
  intervalMs: number;
}

export class KeyframeSchedule {
  readonly #policy: KeyframePolicy;
  #framesSince = Infinity;
  #lastKeyframeMs = -Infinity;

  readonly #phase: number;
  #keyframes = 0;

  /** `phase` in [0, 1): how much of the first interval is skipped (default random). */
  constructor(policy: KeyframePolicy, phase = Math.random()) {
    if (!(policy.intervalFrames >= 1) || !(policy.intervalMs >= 0)) throw new Error('keyframe interval must be >= 1 frame and >= 0 ms');
    if (!(phase >= 0 && phase < 1)) throw new Error('keyframe phase must be in [0, 1)');
    this.#policy = policy;
    this.#phase = phase;
  }

  /** Whether the next frame must be a keyframe: `tracked` is how many faces the stream follows now. */
  due(nowMs: number, tracked: number): boolean {
    return (
      tracked === 0 ||
      this.#framesSince + 1 >= this.#policy.intervalFrames ||
      nowMs - this.#lastKeyframeMs >= this.#policy.intervalMs
    );
  }

  /** What the frame turned out to be (a tracked frame may have become a keyframe in the worker). */
  record(keyframe: boolean, nowMs: number): void {
    if (keyframe) {
      // After the first keyframe, start part-way into the interval (see `phase`).
      const skip = this.#keyframes === 0 ? this.#phase : 0;
      this.#keyframes += 1;
      this.#framesSince = Math.floor(skip * this.#policy.intervalFrames);
      this.#lastKeyframeMs = nowMs - skip * this.#policy.intervalMs;
    } else {
      this.#framesSince += 1;
    }
  }
}
