/**
 * The calls between the main thread and an inference worker (structured clone + transfer), as one
 * map keyed by kind: each kind's request and reply types are declared once here, and both sides
 * are typed from it (the pool's `call`, the worker's handler table), so no reply is cast.
 */
import type { ErrorCode } from '../../contract/errors.ts';
import type { BackendChoice } from '../../contract/backend-choices.ts';
import type { MirrorAverageSetting } from '../../contract/model-card.ts';
import type { FrameTimings } from '../../contract/socket.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';
import type { TrackingOptions } from '../pipeline/face-tracking.ts';
import type { KeyframeReason } from '../pipeline/keyframes.ts';
import type { ClassifiedFace, DetectedFace, FollowedFace } from '../pipeline/types.ts';

export interface WorkerInit {
  backend: BackendChoice;
  faceModelDir: string;
  modelDir: string;
  mirrorAverage: MirrorAverageSetting;
  minFaceSize: number;
  /** folder of the MediaPipe face detection graphs (used when a path's detector is `blazeface`) */
  blazeModelDir: string;
  /** every detector setting in use, each run once before the worker says ready */
  warmupDetectors: DetectorSpec[];
  limits: { maxImageBytes: number; maxImagePixels: number };
}

export type FrameInput =
  | { kind: 'encoded'; bytes: Uint8Array }
  | { kind: 'rgb'; data: Uint8Array; width: number; height: number };

/** How to find the faces of one frame. */
export interface FramePlan {
  /** the detector a keyframe runs */
  detector: DetectorSpec;
  /**
   * live streams with LIVE_TRACKER=crop: follow these faces (the previous frame's) instead of
   * detecting; none when a keyframe is due. The options also say whether faces get motion anchors.
   */
  track?: { faces: FollowedFace[]; options: TrackingOptions };
  /** live streams: compare with the previous frame's thumbnail; a difference above `threshold` forces a keyframe */
  sceneCut?: { previous?: Uint8Array; threshold: number };
  /** average each face with its mirror image (`analyze` only; default: the worker's EMOTION_MIRROR_AVERAGE) */
  mirrorAverage?: MirrorAverageSetting;
}


/** What locating the faces of a frame found besides the faces. */
export interface FrameFacts {
  width: number;
  height: number;
  /** faces found but smaller than MIN_FACE_SIZE, so not analysed (on frames that ran the detector) */
  skippedSmallFaces: number;
  /** undefined: the faces were tracked from the previous frame */
  keyframe?: KeyframeReason;
  /** grey thumbnail of this frame, for the next frame's scene-cut check (live streams) */
  thumbnail?: Uint8Array;
}

/** A frame after decode -> locate -> align: faces and their aligned crops, ready for the batcher. */
export interface PreparedFrame extends FrameFacts {
  faces: DetectedFace[];
  /** faces.length aligned grey crops of cropSize x cropSize, concatenated */
  crops: Float32Array;
  cropSize: number;
  timings: Pick<FrameTimings, 'decode' | 'detect' | 'track' | 'landmarks' | 'align'>;
}

/** A frame analysed in one worker call: located, aligned and classified. */
export interface AnalysedFrame extends FrameFacts {
  faces: ClassifiedFace[];
  timings: Pick<FrameTimings, 'decode' | 'detect' | 'track' | 'landmarks' | 'align' | 'classify'>;
}

export type FrameOutcome = { ok: true; frame: AnalysedFrame } | { ok: false; error: WorkerFailure };

export interface MemoryResult {
  numTensors: number;
  numBytes: number;
}

type Empty = Record<never, never>;

export interface WorkerCalls {
  /** decode -> locate -> align of one frame, for the cross-frame batcher */
  prepare: { request: { input: FrameInput; plan: FramePlan }; reply: PreparedFrame };
  /**
   * decode -> locate -> align -> classify of each frame: one hop a frame, no batcher; the faces of
   * all the frames share one classifier batch. Each frame succeeds or fails on its own.
   */
  analyze: { request: { frames: { input: FrameInput; plan: FramePlan }[] }; reply: { frames: FrameOutcome[] } };
  /** one batch of aligned crops -> count x 7 probabilities */
  classify: { request: { crops: Float32Array; count: number }; reply: { probabilities: Float32Array } };
  /** loads and warms up a candidate emotion model beside the one in use */
  'load-model': { request: { modelDir: string }; reply: { modelVersion: string } };
  /** puts the loaded candidate in use and frees the old model */
  'swap-model': { request: Empty; reply: { modelVersion: string } };
  /** frees the loaded candidate (another worker failed to load it) */
  'drop-model': { request: Empty; reply: Empty };
  /** live tensors (for leak tests and metrics) */
  memory: { request: Empty; reply: MemoryResult };
}

export type CallKind = keyof WorkerCalls;
export type RequestOf<K extends CallKind> = { id: number; kind: K } & WorkerCalls[K]['request'];
export type ResultOf<K extends CallKind> = { type: 'result'; id: number; ok: true; kind: K; value: WorkerCalls[K]['reply'] };

export type WorkerRequest = { [K in CallKind]: RequestOf<K> }[CallKind];
export type WorkerResult = { [K in CallKind]: ResultOf<K> }[CallKind];

export interface WorkerFailure {
  code: ErrorCode;
  message: string;
}

export type WorkerReply =
  | { type: 'ready'; backend: string; modelVersion: string }
  | { type: 'init-failed'; message: string }
  | WorkerResult
  | { type: 'result'; id: number; ok: false; error: WorkerFailure };

/** Narrows a successful reply to the kind that was asked for. */
export function isResultOf<K extends CallKind>(reply: WorkerResult | ResultOf<K>, kind: K): reply is ResultOf<K> {
  return reply.kind === kind;
}
