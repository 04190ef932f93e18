/**
 * Everything inference, wired once: the worker pool (each worker: tfjs backend, face detectors,
 * emotion model), the dynamic batcher in front of the classifier when CLASSIFY_BATCHING asks for
 * it, the analyzer every path uses, and the model watcher for hot reload. Resolves once every
 * model is loaded and warmed up.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { batchQueueWaitSeconds, batchSize, modelInfo, queueDepth } from '../metrics/metrics.ts';
import { PipelineAnalyzer } from './analyzer.ts';
import { EMOTIONS } from '../../contract/emotions.ts';
import { DynamicBatcher } from './batcher.ts';
import { ModelWatcher } from './model-watcher.ts';
import { InferencePool } from './worker-pool.ts';

export interface Inference {
  pool: InferencePool;
  /** only when classifier batches are shared across frames (CLASSIFY_BATCHING) */
  batcher?: DynamicBatcher<Float32Array, Float32Array>;
  analyzer: PipelineAnalyzer;
  watcher: ModelWatcher;
  close(): Promise<void>;
}

const PRIORITIES = ['live', 'image', 'video'] as const;

export async function startInference(config: Config, logger: Logger): Promise<Inference> {
  const detectors = [config.detectors.live, config.detectors.image, config.detectors.video];
  const uniqueDetectors = detectors.filter((d, i) => detectors.findIndex((e) => JSON.stringify(e) === JSON.stringify(d)) === i);
  const pool = await InferencePool.start({
    size: config.workers,
    init: {
      backend: config.backend,
      faceModelDir: config.faceModelDir,
      blazeModelDir: config.blazeModelDir,
      modelDir: config.modelDir,
      mirrorAverage: config.mirrorAverage,
      minFaceSize: config.minFaceSize,
      warmupDetectors: uniqueDetectors,
      limits: config.limits,
    },
    queueLimits: config.workQueue,
    maxFramesPerCall: config.workerMaxFrames,
    logger,
  });
  const describeDetector = (d: (typeof detectors)[number]): string => (d.kind === 'tiny' ? `tiny:${d.inputSize}` : d.kind);
  const recordModel = (version: string): void => {
    modelInfo.reset();
    modelInfo.set(
      { model_version: version, backend: pool.backend, detector: `live=${describeDetector(config.detectors.live)},image=${describeDetector(config.detectors.image)},video=${describeDetector(config.detectors.video)}` },
      1,
    );
  };
  recordModel(pool.modelVersion);
  logger.info({ backend: pool.backend, workers: pool.size, modelVersion: pool.modelVersion, detectors: config.detectors }, 'inference ready');

  const batching = config.classifyBatching === 'auto' ? pool.backend === 'tensorflow' : config.classifyBatching === 'on';
  logger.info({ backend: pool.backend, classifyBatching: config.classifyBatching, batching }, batching ? 'faces of all frames share classifier batches' : 'each frame is classified in the worker that located its faces');
  const batcher = !batching ? undefined : new DynamicBatcher<Float32Array, Float32Array>({
    maxBatchSize: config.batch.maxSize,
    maxDelayMs: config.batch.maxDelayMs,
    maxQueue: config.batch.maxQueue,
    maxConcurrent: pool.size,
    priorities: PRIORITIES,
    run: async (crops) => {
      const joined = new Float32Array(crops.reduce((n, c) => n + c.length, 0));
      let offset = 0;
      for (const crop of crops) {
        joined.set(crop, offset);
        offset += crop.length;
      }
      const probabilities = await pool.classify(joined, crops.length);
      const k = EMOTIONS.length;
      return crops.map((_, i) => probabilities.slice(i * k, (i + 1) * k));
    },
    onBatch: (size, waits) => {
      batchSize.observe(size);
      for (const w of waits) batchQueueWaitSeconds.observe({ priority: w.priority }, w.waitMs / 1000);
    },
    onDepth: (depth) => {
      queueDepth.set({ queue: 'batcher_live' }, depth.live ?? 0);
      queueDepth.set({ queue: 'batcher_file' }, (depth.image ?? 0) + (depth.video ?? 0));
    },
  });

  const analyzer = new PipelineAnalyzer({
    pool,
    ...(batcher ? { batcher } : {}),
    detectors: config.detectors,
    liveTracking: config.liveTracking,
    maxImageBytes: config.limits.maxImageBytes,
  });

  const watcher = new ModelWatcher({
    dir: config.modelDir,
    pollMs: config.modelPollMs,
    logger,
    reload: async (dir) => {
      const version = await pool.reload(dir);
      recordModel(version);
      return version;
    },
  });
  await watcher.start();

  return {
    pool,
    ...(batcher ? { batcher } : {}),
    analyzer,
    watcher,
    async close() {
      watcher.close();
      batcher?.close();
      await pool.close();
    },
  };
}

/** Resolves once MODEL_DIR holds a model (model.json and card.json), polling; the trainer may still be writing the first one. */
export async function waitForModel(dir: string, logger: Logger, pollMs: number, signal?: AbortSignal): Promise<void> {
  let warned = false;
  for (;;) {
    try {
      await access(path.join(dir, 'model.json'));
      await access(path.join(dir, 'card.json'));
      return;
    } catch {
      if (!warned) logger.warn({ dir }, 'no emotion model yet; waiting for model.json and card.json (run `npm run train`)');
      warned = true;
    }
    if (signal?.aborted) throw new Error('stopped while waiting for the emotion model');
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
