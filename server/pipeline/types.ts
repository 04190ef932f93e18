import type { EmotionScores } from '../../contract/emotions.ts';
import type { Box, Point } from '../../contract/geometry.ts';
import type { FrameTimings } from '../../contract/socket.ts';

/** A decoded image: interleaved RGB bytes, row-major. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Who a frame is analysed for: live streams have priority over files in the shared batcher. */
export type FrameSource = 'live' | 'upload' | 'video';

/** One face after detect -> landmarks: where it is and how sure the detector was. */
export interface DetectedFace {
  box: Box;
  /** detector confidence 0..1 */
  score: number;
  /** 68 landmarks in source pixels (face-api order) */
  landmarks: Point[];
}

/** A detected face after align -> classify, before tracking (which turns it into a wire `Face`). */
export interface ClassifiedFace extends DetectedFace {
  emotions: EmotionScores;
}

/** A frame's analysis before tracking: faces plus where the time went (milliseconds). */
export interface FrameAnalysis {
  width: number;
  height: number;
  faces: ClassifiedFace[];
  timings: FrameTimings;
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
