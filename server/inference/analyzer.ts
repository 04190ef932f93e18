/**
 * The whole per-frame pipeline for every path (live, image, video), as the main thread schedules
 * it. Each frame goes to one worker (pool, by source priority) with a plan: the path's detector,
 * and for live streams the faces to follow and the previous thumbnail (see prepare-frame.ts).
 * Then either the same worker classifies the faces (one thread hop a frame: the CPU default), or
 * the aligned crops of all frames in flight share classifier batches (the dynamic batcher: pays
 * where a batch costs little more than one face, e.g. on a GPU). CLASSIFY_BATCHING picks.
 * Tracking ids and smoothing are per stream and happen in the caller (see pipeline/track.ts).
 */
import { AppError } from '../../contract/errors.ts';
import type { LiveTrackingConfig } from '../config.ts';
import { batchSize, facesClassified, facesFollowed, framesLocated, framesProcessed, stageSeconds } from '../metrics/metrics.ts';
import { normalisedScores } from '../../contract/emotions.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';
import type { ClassifiedFace, FrameAnalysis, FrameAnalyzer, FrameSource, RgbFrame, StreamContext } from '../pipeline/types.ts';
import type { DynamicBatcher } from './batcher.ts';
import type { InferencePool } from './worker-pool.ts';
import type { FrameInput, FramePlan, PreparedFrame } from './worker-protocol.ts';

export interface AnalyzerDeps {
  pool: Pick<InferencePool, 'prepare' | 'analyze'>;
  /** when given, classification goes through this cross-frame batcher (one aligned crop in, 7 probabilities out) */
  batcher?: Pick<DynamicBatcher<Float32Array, Float32Array>, 'submit'>;
  detectors: Record<FrameSource, DetectorSpec>;
  liveTracking: LiveTrackingConfig;
  maxImageBytes: number;
}

export class PipelineAnalyzer implements FrameAnalyzer {
  readonly #deps: AnalyzerDeps;

  constructor(deps: AnalyzerDeps) {
    this.#deps = deps;
  }

  // Frames are counted as received where they arrive (socket frame handler, image route, video
  // decoder), refused ones included; a retried video frame enters here more than once.
  analyzeEncoded(image: Uint8Array, source: FrameSource, stream?: StreamContext): Promise<FrameAnalysis> {
    // Cheap checks here, before the bytes cross to a worker; the worker checks the header.
    if (image.byteLength > this.#deps.maxImageBytes) {
      return Promise.reject(new AppError('image_too_large', `the image has ${image.byteLength} bytes, the limit is ${this.#deps.maxImageBytes}`));
    }
    if (image.byteLength === 0) return Promise.reject(new AppError('undecodable_image', 'the image is empty'));
    // A private copy: it is transferred to the worker, and the caller's buffer may be a slice of a pool.
    return this.#analyze({ kind: 'encoded', bytes: new Uint8Array(image) }, source, stream);
  }

  analyzeRgb(frame: RgbFrame, source: FrameSource, stream?: StreamContext): Promise<FrameAnalysis> {
    return this.#analyze({ kind: 'rgb', data: new Uint8Array(frame.data), width: frame.width, height: frame.height }, source, stream);
  }

  /** What the worker does with this frame: detect, or follow the stream's faces; and the scene-cut check for streams. */
  #plan(source: FrameSource, stream: StreamContext | undefined): FramePlan {
    const detector = this.#deps.detectors[source];
    if (!stream) return { detector };
    const tracking = this.#deps.liveTracking;
    return {
      detector,
      ...(tracking.enabled ? { track: { faces: stream.keyframeDue ? [] : stream.follow, options: tracking.options } } : {}),
      sceneCut: { previous: stream.thumbnail, threshold: tracking.sceneCutThreshold },
      mirrorAverage: tracking.mirrorAverage,
    };
  }

  async #analyze(input: FrameInput, source: FrameSource, stream: StreamContext | undefined): Promise<FrameAnalysis> {
    const started = performance.now();
    const plan = this.#plan(source, stream);
    const { batcher } = this.#deps;
    const analysed = batcher ? await this.#batched(batcher, input, source, plan) : await this.#deps.pool.analyze(input, source, plan);
    const timings = { ...analysed.timings, total: performance.now() - started };
    for (const [stage, ms] of Object.entries(timings)) stageSeconds.observe({ stage, source }, ms / 1000);
    framesProcessed.inc({ source });
    framesLocated.inc({ source, by: analysed.keyframe ?? 'tracking' });
    if (!analysed.keyframe) {
      // A face moved by its patch carries its anchor some steps on; one the crop detector found has a fresh anchor (or none).
      const moved = analysed.faces.filter((face) => (face.anchor?.steps ?? 0) > 0).length;
      facesFollowed.inc({ by: 'motion' }, moved);
      facesFollowed.inc({ by: 'crop' }, analysed.faces.length - moved);
    }
    facesClassified.inc({ source }, analysed.faces.length);
    // Without the batcher the worker classified this frame's faces as one batch.
    if (!batcher && analysed.faces.length > 0) batchSize.observe(analysed.faces.length);
    return { ...analysed, timings };
  }

  async #batched(batcher: NonNullable<AnalyzerDeps['batcher']>, input: FrameInput, source: FrameSource, plan: FramePlan): Promise<FrameAnalysis> {
    const prepared = await this.#deps.pool.prepare(input, source, plan);
    const classifyStarted = performance.now();
    const probabilities = await batcher.submit(splitCrops(prepared), source);
    const classify = performance.now() - classifyStarted;
    const faces = prepared.faces.map((face, i): ClassifiedFace => ({ ...face, emotions: normalisedScores(probabilities[i]!) }));
    const { crops: _crops, cropSize: _cropSize, ...facts } = prepared;
    return { ...facts, faces, timings: { ...prepared.timings, classify } };
  }
}

function splitCrops(prepared: PreparedFrame): Float32Array[] {
  const size = prepared.cropSize * prepared.cropSize;
  return prepared.faces.map((_, i) => prepared.crops.subarray(i * size, (i + 1) * size));
}
