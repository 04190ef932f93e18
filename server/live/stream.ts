/**
 * What one live participant's stream carries from frame to frame so that most frames are
 * tracked, not detected: the keyframe schedule, the faces of the last frame (detector regions and
 * motion anchors), and the last frame's thumbnail for the scene-cut check. Frames of one socket are analysed
 * one at a time (see backpressure.ts), so this state is never shared by two frames in flight.
 */
import { type KeyframePolicy, KeyframeSchedule } from '../pipeline/keyframes.ts';
import type { FollowedFace, FrameAnalysis, StreamContext } from '../pipeline/types.ts';

export class LiveStream {
  readonly #schedule: KeyframeSchedule;
  #follow: FollowedFace[] = [];
  #thumbnail: Uint8Array | undefined;

  /** `phase`: see KeyframeSchedule (default random). */
  constructor(policy: KeyframePolicy, phase?: number) {
    this.#schedule = new KeyframeSchedule(policy, phase);
  }

  /** The context of the next frame. */
  context(nowMs: number): StreamContext {
    return { keyframeDue: this.#schedule.due(nowMs, this.#follow.length), follow: this.#follow, thumbnail: this.#thumbnail };
  }

  /** Records an analysed frame; a frame that failed leaves the state as it was. */
  record(analysis: FrameAnalysis, nowMs: number): void {
    this.#schedule.record(analysis.keyframe !== undefined, nowMs);
    this.#follow = analysis.faces.flatMap(({ region, anchor }) => (region ? [{ region, ...(anchor ? { anchor } : {}) }] : []));
    this.#thumbnail = analysis.thumbnail;
  }
}
