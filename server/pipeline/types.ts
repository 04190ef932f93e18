import type { EmotionScores } from '../../contract/emotions.ts';
import type { FacePoints } from '../../contract/face-points.ts';
import type { Box } from '../../contract/geometry.ts';
import type { FrameTimings } from '../../contract/socket.ts';
import type { MotionPatch } from './face-motion.ts';
import type { KeyframeReason } from './keyframes.ts';

/** A decoded image: interleaved RGB bytes, row-major. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Who a frame is analysed for: a live stream, a single image (POST /api/v1/analyze) or a video
 * job. Live streams have priority over the others in the shared batcher; also the `source` label
 * of the metrics.
 */
export type FrameSource = 'live' | 'image' | 'video';

/** Whether a face was found by a detector on this frame or followed from the previous frame. */
export type FaceOrigin = 'detection' | 'tracking';

/** One located face: where it is, how sure the detector was, and the points alignment uses. */
export interface DetectedFace {
  box: Box;
  /** detector confidence 0..1 */
  score: number;
  /** eye and mouth centres in source pixels */
  points: FacePoints;
  origin: FaceOrigin;
  /** the live detector's own box, from which the next frame's tracking crop is cut */
  region?: Box;
  /** live streams: where the detector last saw this face, for the next frame's motion step */
  anchor?: FaceAnchor;
}

/**
 * A face as the detector (a keyframe or a tracking crop) last found it, with its grey patch on
 * that frame: the frames after it may move the face by matching the patch (pipeline/face-motion.ts).
 */
export interface FaceAnchor {
  patch: MotionPatch;
  box: Box;
  region: Box;
  points: FacePoints;
  score: number;
  /** frames in a row this face has been moved by motion steps since the detector saw it */
  steps: number;
}

/** A face a live stream follows to its next frame. */
export interface FollowedFace {
  /** the detector region on the stream's last frame */
  region: Box;
  anchor?: FaceAnchor;
}

/** A detected face after align -> classify, before tracking (which turns it into a wire `Face`). */
export interface ClassifiedFace extends DetectedFace {
  emotions: EmotionScores;
}

/** What a live stream carries from one frame to the next (see live/stream.ts). */
export interface StreamContext {
  /** the stream's keyframe schedule asks for the detector on this frame */
  keyframeDue: boolean;
  /** the faces of the previous frame, to follow between keyframes */
  follow: FollowedFace[];
  /** the previous frame's grey thumbnail, for the scene-cut check */
  thumbnail?: Uint8Array;
}

/** A frame's analysis before tracking: faces plus where the time went (milliseconds). */
export interface FrameAnalysis {
  width: number;
  height: number;
  /** faces found but smaller than MIN_FACE_SIZE, so not analysed (on frames that ran the detector) */
  skippedSmallFaces: number;
  faces: ClassifiedFace[];
  timings: FrameTimings;
  /** why the detector ran on this frame; undefined when its faces were tracked from the previous frame */
  keyframe?: KeyframeReason;
  /** this frame's grey thumbnail (live streams), for the next frame's scene-cut check */
  thumbnail?: Uint8Array;
}

/**
 * decode -> detect -> landmarks -> align -> batch classify, shared by live frames, single images
 * and video jobs. Tracking and smoothing are per stream and happen after it.
 */
export interface FrameAnalyzer {
  /** Encoded JPEG/PNG/WebP bytes; throws AppError('undecodable_image' | 'image_too_large'). */
  analyzeEncoded(image: Uint8Array, source: FrameSource, stream?: StreamContext): Promise<FrameAnalysis>;
  /** Already-decoded RGB (e.g. raw frames piped from ffmpeg). */
  analyzeRgb(frame: RgbFrame, source: FrameSource, stream?: StreamContext): Promise<FrameAnalysis>;
}
