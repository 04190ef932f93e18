/** Messages between the training coordinator and its data-parallel workers (one tfjs each). */
import type { AugmentOptions } from './augment.ts';

/** The first message: the worker sets up its backend and model from it and answers `ready`. */
export interface WorkerInit {
  type: 'init';
  workerIndex: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  width: number;
  batchNorm: boolean;
  seed: number;
  images: Uint8Array; // shared training images
  labels: Uint8Array;
  normalisation: { scale: number; offset: number };
  augment: AugmentOptions;
  classWeights: number[];
  labelSmoothing: number;
  backboneWeights?: string;
}

export type CoordinatorMessage =
  | WorkerInit
  /** side: the faces' side in pixels for this step (48, or less in low-resolution epochs) */
  | { type: 'grad'; indices: Int32Array; augmentSeed: number; side: number }
  | { type: 'apply'; grads: Float32Array[]; learningRate: number }
  | { type: 'recalibrate'; indices: Int32Array; batch: number }
  | { type: 'predict'; images: Uint8Array; start: number; end: number; tta: boolean }
  | { type: 'save'; dir: string; float16: boolean }
  | { type: 'getState' }
  | { type: 'setState'; state: TrainState };

export interface TrainState {
  weights: { name: string; shape: number[]; data: Float32Array }[];
  optimizer: { name: string; shape: number[]; data: Float32Array }[];
}

export type WorkerMessage =
  | { type: 'ready'; backend: string; parameters: number; checksum: number }
  | { type: 'grad'; grads: Float32Array[]; loss: number; correct: number; n: number }
  | { type: 'applied' }
  | { type: 'recalibrated'; batches: number }
  | { type: 'predicted'; probs: Float32Array }
  | { type: 'saved' }
  | { type: 'state'; state: TrainState }
  | { type: 'stateSet' }
  | { type: 'error'; message: string };
