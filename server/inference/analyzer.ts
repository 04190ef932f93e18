/**
 * The whole per-frame pipeline for every path (live, upload, video), as the main thread schedules
 * it: a worker decodes, detects, finds landmarks and aligns (pool, by source priority), then the
 * aligned crops of all frames in flight share classifier batches (dynamic batcher).
 * Tracking and smoothing are per stream and happen in the caller (see pipeline/track.ts).
 */
import { AppError } from '../../contract/errors.ts';
import { EMOTIONS, scoresFromArray } from '../../contract/emotions.ts';
import { facesClassified, framesProcessed, framesReceived, stageSeconds } from '../metrics/metrics.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';
import type { ClassifiedFace, FrameAnalysis, FrameAnalyzer, FrameSource, RgbFrame } from '../pipeline/types.ts';
import type { DynamicBatcher } from './batcher.ts';
import type { InferencePool } from './worker-pool.ts';
import type { FrameInput, PreparedFrame } from './worker-protocol.ts';

export interface AnalyzerDeps {
  pool: Pick<InferencePool, 'prepare'>;
  /** one aligned crop in, 7 probabilities out */
  batcher: Pick<DynamicBatcher<Float32Array, Float32Array>, 'submit'>;
  detectors: Record<FrameSource, DetectorSpec>;
  maxImageBytes: number;
}

export class PipelineAnalyzer implements FrameAnalyzer {
  readonly #deps: AnalyzerDeps;

  constructor(deps: AnalyzerDeps) {
    this.#deps = deps;
  }

  analyzeEncoded(image: Uint8Array, source: FrameSource): Promise<FrameAnalysis> {
    framesReceived.inc({ source });
    // Cheap checks here, before the bytes cross to a worker; the worker checks the header.
    if (image.byteLength > this.#deps.maxImageBytes) {
      return Promise.reject(new AppError('image_too_large', `the image has ${image.byteLength} bytes, the limit is ${this.#deps.maxImageBytes}`));
    }
    if (image.byteLength === 0) return Promise.reject(new AppError('undecodable_image', 'the image is empty'));
    // A private copy: it is transferred to the worker, and the caller's buffer may be a slice of a pool.
    return this.#analyze({ kind: 'encoded', bytes: new Uint8Array(image) }, source);
  }

  analyzeRgb(frame: RgbFrame, source: FrameSource): Promise<FrameAnalysis> {
    framesReceived.inc({ source });
    return this.#analyze({ kind: 'rgb', data: new Uint8Array(frame.data), width: frame.width, height: frame.height }, source);
  }

  async #analyze(input: FrameInput, source: FrameSource): Promise<FrameAnalysis> {
    const started = performance.now();
    const prepared = await this.#deps.pool.prepare(input, source, this.#deps.detectors[source]);
    const classifyStarted = performance.now();
    const probabilities = await this.#deps.batcher.submit(splitCrops(prepared), source);
    const classify = performance.now() - classifyStarted;

    const faces = prepared.faces.map(
      (face, i): ClassifiedFace => ({ box: face.box, score: face.score, landmarks: face.landmarks, emotions: scoresFromArray(normalised(probabilities[i]!)) }),
    );
    const total = performance.now() - started;
    const timings = { ...prepared.timings, classify, total };
    for (const [stage, ms] of Object.entries(timings)) stageSeconds.observe({ stage, source }, ms / 1000);
    framesProcessed.inc({ source });
    facesClassified.inc({ source }, faces.length);
    return { width: prepared.width, height: prepared.height, faces, timings };
  }
}

function splitCrops(prepared: PreparedFrame): Float32Array[] {
  const size = prepared.cropSize * prepared.cropSize;
  return prepared.faces.map((_, i) => prepared.crops.subarray(i * size, (i + 1) * size));
}

/** Softmax output in float32 can be off by ~1e-7; clients are promised probabilities that sum to 1. */
function normalised(p: Float32Array): number[] {
  if (p.length !== EMOTIONS.length) throw new Error(`expected ${EMOTIONS.length} probabilities, got ${p.length}`);
  const values = Array.from(p, (v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const sum = values.reduce((a, b) => a + b, 0);
  return sum > 0 ? values.map((v) => v / sum) : values.map(() => 1 / values.length);
}
