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

/** A frame's analysis before tracking: faces plus where the time went (milliseconds). */
export interface FrameAnalysis {
  width: number;
  height: number;
  faces: ClassifiedFace[];
  timings: Partial<Record<'decode' | 'detect' | 'landmarks' | 'align' | 'classify' | 'total', number>>;
}

/**
 * decode -> detect -> landmarks -> align -> batch classify, shared by live frames, single-image
 * uploads and video jobs. Tracking and smoothing are per stream and happen after it.
 */
export interface FrameAnalyzer {
  /** Encoded JPEG/PNG/WebP bytes; throws AppError('undecodable_image' | 'image_too_large'). */
  analyzeEncoded(image: Uint8Array, source: FrameSource): Promise<FrameAnalysis>;
  /** Already-decoded RGB (e.g. raw frames piped from ffmpeg). */
  analyzeRgb(frame: RgbFrame, source: FrameSource): Promise<FrameAnalysis>;
}
