import path from 'node:path';
import { z } from 'zod';

/** Everything the video path can be tuned with; parsed once from the environment. */
export interface VideoConfig {
  /** Root of persisted state; the job db and uploads live in `<dataDir>/video/`. */
  dataDir: string;
  /** Largest accepted upload, in bytes. */
  maxUploadBytes: number;
  /** Frames sampled per second of media when the request does not ask for another rate. */
  sampleFps: number;
  /** Frames are scaled down so their longer side is at most this (boxes are mapped back). */
  maxSidePx: number;
  /** Jobs analysed at the same time. */
  jobConcurrency: number;
  /** Jobs waiting beyond the running ones; one more is refused with 503 queue_full. */
  maxQueuedJobs: number;
  /** Frames of one job in the analyzer at once (the ffmpeg pipe is paused beyond this). */
  maxInFlightFrames: number;
  /** Keep uploaded files after analysis (default: delete them). */
  keepUploads: boolean;
}

export const VIDEO_CONFIG_DEFAULTS: VideoConfig = {
  dataDir: 'data',
  maxUploadBytes: 500 * 1024 * 1024,
  sampleFps: 5,
  maxSidePx: 640,
  jobConcurrency: 1,
  maxQueuedJobs: 8,
  maxInFlightFrames: 4,
  keepUploads: false,
};

const booleanFlag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((value) => value === '1' || value === 'true' || value === 'yes');

const envSchema = z.object({
  MOODWIRE_DATA_DIR: z.string().min(1).default(VIDEO_CONFIG_DEFAULTS.dataDir),
  VIDEO_MAX_UPLOAD_MB: z.coerce.number().positive().max(100_000).optional(),
  VIDEO_SAMPLE_FPS: z.coerce.number().min(0.1).max(60).default(VIDEO_CONFIG_DEFAULTS.sampleFps),
  VIDEO_MAX_SIDE_PX: z.coerce.number().int().min(64).max(4096).default(VIDEO_CONFIG_DEFAULTS.maxSidePx),
  VIDEO_JOB_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(VIDEO_CONFIG_DEFAULTS.jobConcurrency),
  VIDEO_MAX_QUEUED_JOBS: z.coerce.number().int().min(0).max(10_000).default(VIDEO_CONFIG_DEFAULTS.maxQueuedJobs),
  VIDEO_MAX_INFLIGHT_FRAMES: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(VIDEO_CONFIG_DEFAULTS.maxInFlightFrames),
  VIDEO_KEEP_UPLOADS: booleanFlag.default(false),
});

/** Parse the video settings from an environment (`process.env` by default); throws on bad values. */
export function loadVideoConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<VideoConfig> = {}): VideoConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid video settings: ${z.prettifyError(parsed.error)}`);
  }
  const e = parsed.data;
  return {
    dataDir: path.resolve(e.MOODWIRE_DATA_DIR),
    maxUploadBytes:
      e.VIDEO_MAX_UPLOAD_MB === undefined
        ? VIDEO_CONFIG_DEFAULTS.maxUploadBytes
        : Math.round(e.VIDEO_MAX_UPLOAD_MB * 1024 * 1024),
    sampleFps: e.VIDEO_SAMPLE_FPS,
    maxSidePx: e.VIDEO_MAX_SIDE_PX,
    jobConcurrency: e.VIDEO_JOB_CONCURRENCY,
    maxQueuedJobs: e.VIDEO_MAX_QUEUED_JOBS,
    maxInFlightFrames: e.VIDEO_MAX_INFLIGHT_FRAMES,
    keepUploads: e.VIDEO_KEEP_UPLOADS,
    ...overrides,
  };
}
