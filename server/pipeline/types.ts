import type { Emotion, EmotionScores } from './emotions.ts';

/** Axis-aligned box in source-image pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type Point = readonly [number, number];

/** A decoded image: interleaved RGB bytes, row-major. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Who a frame is analysed for: live streams have priority over files in the shared batcher. */
export type FrameSource = 'live' | 'upload' | 'video';

/** One face after detect -> landmarks -> align -> classify, before tracking. */
export interface ClassifiedFace {
  box: Box;
  /** detector confidence 0..1 */
  score: number;
  /** 68 landmarks in source pixels (face-api order) */
  landmarks: Point[];
  emotions: EmotionScores;
  dominant: Emotion;
}

/** A face as sent to clients: tracked and smoothed. */
export interface FaceResult {
  trackId: number;
  box: Box;
  score: number;
  emotions: EmotionScores;
  dominant: Emotion;
  smoothed: EmotionScores;
}
