/**
 * When a live stream runs the full-frame detector (a keyframe) instead of tracking its faces
 * from the previous frame: the first frame, then every `intervalFrames` frames or `intervalMs`
 * milliseconds, whichever comes first, and whenever the stream has no face to track. A face lost
 * by the tracker and a scene cut also force a keyframe, on the frame where they happen; that is
 * decided by the worker (it sees the pixels) and reported back through `record`.
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

  constructor(policy: KeyframePolicy) {
    if (!(policy.intervalFrames >= 1) || !(policy.intervalMs >= 0)) throw new Error('keyframe interval must be >= 1 frame and >= 0 ms');
    this.#policy = policy;
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
      this.#framesSince = 0;
      this.#lastKeyframeMs = nowMs;
    } else {
      this.#framesSince += 1;
    }
  }
}
