import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BACKEND_CHOICES } from '../contract/backend.ts';
import { MIRROR_AVERAGE_SETTINGS, type MirrorAverageSetting } from '../contract/model-card.ts';
import type { DetectorSpec } from './pipeline/detect.ts';

/**
 * Every setting of the server, read from the environment once and validated with zod.
 * Times are milliseconds unless the name says otherwise. Other modules receive the typed
 * `Config` (or the part they need) and never read `process.env` themselves.
 */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A detector setting: `ssd` (SSD MobileNet v1, accurate, ~300 ms a frame on one wasm thread) or
 * `tiny:<inputSize>` (tiny face detector, 30-60 ms). Written as one string so it fits one env var.
 */
export const detectorSpecSchema = z
  .string()
  .regex(/^(ssd|tiny(:(128|160|224|256|288|320|352|384|416|448|480|512|544|576|608))?)$/, {
    message: 'expected "ssd" or "tiny:<input size, a multiple of 32 from 128 to 608>"',
  });

export function parseDetectorSpec(spec: string, minScore: { ssd: number; tiny: number }): DetectorSpec {
  const [kind, size] = detectorSpecSchema.parse(spec).split(':');
  if (kind === 'ssd') return { kind: 'ssd', inputSize: 0, minScore: minScore.ssd };
  return { kind: 'tiny', inputSize: Number(size ?? 512), minScore: minScore.tiny };
}

const intFromEnv = (fallback: number) => z.coerce.number().int().default(fallback);
const numFromEnv = (fallback: number) => z.coerce.number().default(fallback);

const envSchema = z.object({
  PORT: intFromEnv(3000).pipe(z.number().int().min(0).max(65535)),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  EMOTION_BACKEND: z.enum(BACKEND_CHOICES).default('wasm'),
  MODEL_DIR: z.string().default('models/emotion'),
  /**
   * Classify each face and its mirror image and average them: `card` follows the model card (its
   * accuracy was measured that way), `off` halves the classifier's cost, `on` forces it.
   */
  EMOTION_MIRROR_AVERAGE: z.enum(MIRROR_AVERAGE_SETTINGS).default('card'),
  /** Poll interval for model changes besides fs.watch (watch events can be missed on some file systems). */
  MODEL_POLL_MS: intFromEnv(2000).pipe(z.number().int().min(100)),
  FACE_MODEL_DIR: z.string().optional(),
  /**
   * Detector per path: live streams trade a little recall for latency; photos and videos use SSD.
   * Measured on the six test photos (22 faces): ssd 22/22; tiny:512 (score 0.4) 21/22, none
   * invented, ~0.5x SSD's cost; tiny:416 19/22 with one double detection.
   */
  DETECTOR_LIVE: detectorSpecSchema.default('tiny:512'),
  DETECTOR_UPLOAD: detectorSpecSchema.default('ssd'),
  DETECTOR_VIDEO: detectorSpecSchema.default('ssd'),
  DETECTOR_MIN_SCORE: numFromEnv(0.5).pipe(z.number().min(0).max(1)),
  /** The tiny detector's scores run lower than SSD's for the same faces. */
  TINY_DETECTOR_MIN_SCORE: numFromEnv(0.4).pipe(z.number().min(0).max(1)),
  /** Faces smaller than this (box side in source pixels) are skipped: too few pixels to read. */
  MIN_FACE_SIZE: intFromEnv(20).pipe(z.number().int().min(1)),
  /** Dynamic batcher: a batch runs when it is full or when its oldest face waited this long. */
  BATCH_MAX_SIZE: intFromEnv(32).pipe(z.number().int().min(1).max(256)),
  BATCH_MAX_DELAY_MS: numFromEnv(4).pipe(z.number().min(0).max(1000)),
  BATCH_MAX_QUEUE: intFromEnv(512).pipe(z.number().int().min(1)),
  /** Worker threads, each with its own tfjs, face-api and emotion model (one per core by default). */
  WORKERS: intFromEnv(Math.max(1, Math.min(os.availableParallelism(), 4))).pipe(z.number().int().min(1).max(32)),
  /** Frames waiting for a worker, per source, beyond which new ones are refused with queue_full. */
  WORK_QUEUE_LIVE: intFromEnv(64).pipe(z.number().int().min(1)),
  WORK_QUEUE_UPLOAD: intFromEnv(16).pipe(z.number().int().min(1)),
  WORK_QUEUE_VIDEO: intFromEnv(8).pipe(z.number().int().min(1)),
  MAX_IMAGE_BYTES: intFromEnv(4 * 1024 * 1024).pipe(z.number().int().min(1024)),
  MAX_IMAGE_PIXELS: intFromEnv(4096 * 4096).pipe(z.number().int().min(64 * 64)),
  MAX_SESSIONS: intFromEnv(1000).pipe(z.number().int().min(1)),
  MAX_PARTICIPANTS_PER_SESSION: intFromEnv(16).pipe(z.number().int().min(1)),
  /** Timeline samples kept per track and tracks kept per participant (oldest dropped first). */
  TIMELINE_MAX_SAMPLES: intFromEnv(600).pipe(z.number().int().min(1)),
  TIMELINE_MAX_TRACKS: intFromEnv(32).pipe(z.number().int().min(1)),
  /** A track not seen for this long is closed; a face reappearing later gets a new trackId. */
  TRACK_MAX_AGE_MS: intFromEnv(1500).pipe(z.number().int().min(1)),
  /** EMA time constant of smoothed probabilities. */
  SMOOTHING_TAU_MS: numFromEnv(400).pipe(z.number().min(0)),
  CLIENT_DIR: z.string().default('client/dist'),
  SHUTDOWN_GRACE_MS: intFromEnv(5000).pipe(z.number().int().min(0)),
});

export interface Config {
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  backend: z.infer<typeof envSchema>['EMOTION_BACKEND'];
  modelDir: string;
  mirrorAverage: MirrorAverageSetting;
  modelPollMs: number;
  faceModelDir: string;
  detectors: { live: DetectorSpec; upload: DetectorSpec; video: DetectorSpec };
  minFaceSize: number;
  batch: { maxSize: number; maxDelayMs: number; maxQueue: number };
  workers: number;
  workQueue: { live: number; upload: number; video: number };
  limits: { maxImageBytes: number; maxImagePixels: number };
  sessions: { maxSessions: number; maxParticipants: number; timelineMaxSamples: number; timelineMaxTracks: number };
  tracking: { maxAgeMs: number; smoothingTauMs: number };
  clientDir: string;
  shutdownGraceMs: number;
}

/** Folder of face-api's own weights inside the npm package (never fetched from the network). */
export const DEFAULT_FACE_MODEL_DIR = path.join(repoRoot, 'node_modules/@vladmandic/face-api/model');

/** Parses the environment (or any string map, for tests) into a Config; throws a readable error. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid configuration:\n${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  const minScore = { ssd: e.DETECTOR_MIN_SCORE, tiny: e.TINY_DETECTOR_MIN_SCORE };
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    backend: e.EMOTION_BACKEND,
    modelDir: path.resolve(repoRoot, e.MODEL_DIR),
    mirrorAverage: e.EMOTION_MIRROR_AVERAGE,
    modelPollMs: e.MODEL_POLL_MS,
    faceModelDir: e.FACE_MODEL_DIR ? path.resolve(repoRoot, e.FACE_MODEL_DIR) : DEFAULT_FACE_MODEL_DIR,
    detectors: {
      live: parseDetectorSpec(e.DETECTOR_LIVE, minScore),
      upload: parseDetectorSpec(e.DETECTOR_UPLOAD, minScore),
      video: parseDetectorSpec(e.DETECTOR_VIDEO, minScore),
    },
    minFaceSize: e.MIN_FACE_SIZE,
    batch: { maxSize: e.BATCH_MAX_SIZE, maxDelayMs: e.BATCH_MAX_DELAY_MS, maxQueue: e.BATCH_MAX_QUEUE },
    workers: e.WORKERS,
    workQueue: { live: e.WORK_QUEUE_LIVE, upload: e.WORK_QUEUE_UPLOAD, video: e.WORK_QUEUE_VIDEO },
    limits: { maxImageBytes: e.MAX_IMAGE_BYTES, maxImagePixels: e.MAX_IMAGE_PIXELS },
    sessions: {
      maxSessions: e.MAX_SESSIONS,
      maxParticipants: e.MAX_PARTICIPANTS_PER_SESSION,
      timelineMaxSamples: e.TIMELINE_MAX_SAMPLES,
      timelineMaxTracks: e.TIMELINE_MAX_TRACKS,
    },
    tracking: { maxAgeMs: e.TRACK_MAX_AGE_MS, smoothingTauMs: e.SMOOTHING_TAU_MS },
    clientDir: path.resolve(repoRoot, e.CLIENT_DIR),
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
  };
}
