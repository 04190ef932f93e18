/**
 * The calls between the main thread and an inference worker (structured clone + transfer), as one
 * map keyed by kind: each kind's request and reply types are declared once here, and both sides
 * are typed from it (the pool's `call`, the worker's handler table), so no reply is cast.
 */
import type { ErrorCode } from '../../contract/errors.ts';
import type { BackendChoice } from '../../contract/backend.ts';
import type { MirrorAverageSetting } from '../../contract/model-card.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';
import type { DetectedFace } from '../pipeline/types.ts';
import type { FrameTimings } from '../../contract/socket.ts';

export interface WorkerInit {
  backend: BackendChoice;
  faceModelDir: string;
  modelDir: string;
  mirrorAverage: MirrorAverageSetting;
  minFaceSize: number;
  /** every detector setting in use, each run once before the worker says ready */
  warmupDetectors: DetectorSpec[];
  limits: { maxImageBytes: number; maxImagePixels: number };
}

export type FrameInput =
  | { kind: 'encoded'; bytes: Uint8Array }
  | { kind: 'rgb'; data: Uint8Array; width: number; height: number };

/** A frame after decode -> detect -> landmarks -> align: faces and their aligned crops, ready for the batcher. */
export interface PreparedFrame {
  width: number;
  height: number;
  faces: DetectedFace[];
  /** faces.length aligned grey crops of cropSize x cropSize, concatenated */
  crops: Float32Array;
  cropSize: number;
  timings: Pick<FrameTimings, 'decode' | 'detect' | 'landmarks' | 'align'>;
}

export interface MemoryResult {
  numTensors: number;
  numBytes: number;
}

type Empty = Record<never, never>;

export interface WorkerCalls {
  /** decode -> detect -> landmarks -> align of one frame */
  prepare: { request: { input: FrameInput; detector: DetectorSpec }; reply: PreparedFrame };
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
