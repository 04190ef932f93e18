import type { DetectorSpec } from '../pipeline/detect.ts';
import type { ErrorCode } from '../../contract/errors.ts';
import type { BackendChoice } from '../../contract/backend.ts';
import type { MirrorAverageSetting } from '../../contract/model-card.ts';
import type { Box, Point } from '../../contract/geometry.ts';

/** Messages between the main thread and an inference worker (structured clone + transfer). */

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

export interface PreparedFace {
  box: Box;
  score: number;
  landmarks: Point[];
}

/** A frame after decode -> detect -> landmarks -> align: faces and their aligned crops, ready for the batcher. */
export interface PreparedFrame {
  width: number;
  height: number;
  faces: PreparedFace[];
  /** faces.length aligned grey crops of cropSize x cropSize, concatenated */
  crops: Float32Array;
  cropSize: number;
  timings: { decode: number; detect: number; landmarks: number; align: number };
}

export type WorkerRequest =
  | { type: 'prepare'; id: number; input: FrameInput; detector: DetectorSpec }
  | { type: 'classify'; id: number; crops: Float32Array; count: number }
  | { type: 'reload'; id: number; modelDir: string }
  | { type: 'memory'; id: number };

export interface WorkerFailure {
  code: ErrorCode;
  message: string;
}

export type WorkerReply =
  | { type: 'ready'; backend: string; modelVersion: string }
  | { type: 'init-failed'; message: string }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: WorkerFailure };

export interface ClassifyResult {
  probabilities: Float32Array;
  modelVersion: string;
}

export interface ReloadResult {
  modelVersion: string;
}

export interface MemoryResult {
  numTensors: number;
  numBytes: number;
}
