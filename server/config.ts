/**
 * Every setting of the server, read from the environment once and validated with zod. Times are
 * milliseconds unless the name says otherwise. Entry points (main.ts, the CLI, the benches) hand
 * the environment to `loadConfig`; every other module receives its slice of the typed `Config`
 * (the video service: `video`, `ffmpeg`, `tracking`) and never reads `process.env`. Relative
 * paths in settings resolve against the repository root, whatever the working directory.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BACKEND_CHOICES } from '../contract/backend.ts';
import { MIRROR_AVERAGE_SETTINGS, type MirrorAverageSetting } from '../contract/model-card.ts';
import type { DetectorSpec } from './pipeline/detect.ts';
import { DEFAULT_TRACKING, type TrackingOptions } from './pipeline/face-tracking.ts';
import type { KeyframePolicy } from './pipeline/keyframes.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Folder of face-api's own weights inside the npm package (never fetched from the network). */
export const DEFAULT_FACE_MODEL_DIR = path.join(repoRoot, 'node_modules/@vladmandic/face-api/model');

/** The default of every setting, by environment variable (README's settings table lists the same). */
export const CONFIG_DEFAULTS = {
  PORT: 3000,
  HOST: '0.0.0.0',
  LOG_LEVEL: 'info',
  EMOTION_BACKEND: 'wasm',
  MODEL_DIR: 'models/emotion',
  EMOTION_MIRROR_AVERAGE: 'card',
  MODEL_POLL_MS: 2000,
  DETECTOR_LIVE: 'blazeface',
  DETECTOR_UPLOAD: 'ssd',
  DETECTOR_VIDEO: 'ssd',
  DETECTOR_MIN_SCORE: 0.5,
  TINY_DETECTOR_MIN_SCORE: 0.4,
  BLAZEFACE_MIN_SCORE: 0.5,
  BLAZEFACE_MODEL_DIR: 'models/face-detection',
  LIVE_TRACKER: 'crop',
  LIVE_MIRROR_AVERAGE: 'off',
  LIVE_KEYFRAME_INTERVAL: 10,
  LIVE_KEYFRAME_MAX_MS: 2000,
  TRACK_LOST_MIN_SCORE: 0.5,
  SCENE_CUT_THRESHOLD: 30,
  CLASSIFY_BATCHING: 'auto',
  WORKER_MAX_FRAMES: 4,
  MIN_FACE_SIZE: 20,
  BATCH_MAX_SIZE: 32,
  BATCH_MAX_DELAY_MS: 4,
  BATCH_MAX_QUEUE: 512,
  /** one per core, at most 4 */
  WORKERS: Math.max(1, Math.min(os.availableParallelism(), 4)),
  WORK_QUEUE_LIVE: 64,
  WORK_QUEUE_UPLOAD: 16,
  WORK_QUEUE_VIDEO: 8,
  MAX_IMAGE_BYTES: 4 * 1024 * 1024,
  MAX_IMAGE_PIXELS: 4096 * 4096,
  MAX_SESSIONS: 1000,
  MAX_PARTICIPANTS_PER_SESSION: 16,
  TIMELINE_MAX_SAMPLES: 600,
  TIMELINE_MAX_TRACKS: 32,
  TRACK_MAX_AGE_MS: 1500,
  SMOOTHING_TAU_MS: 400,
  CLIENT_DIR: 'client/dist',
  SHUTDOWN_GRACE_MS: 5000,
  MOODWIRE_DATA_DIR: 'data',
  VIDEO_MAX_UPLOAD_MB: 500,
  VIDEO_SAMPLE_FPS: 5,
  VIDEO_MAX_SIDE_PX: 640,
  VIDEO_JOB_CONCURRENCY: 1,
  VIDEO_MAX_QUEUED_JOBS: 8,
  VIDEO_MAX_INFLIGHT_FRAMES: 4,
  VIDEO_KEEP_UPLOADS: false,
} as const;

/**
 * A detector setting, one string so it fits one env var: `ssd` (face-api's SSD MobileNet v1,
 * accurate, ~400 ms a 640-wide frame on one wasm thread), `tiny:<inputSize>` (face-api's tiny
 * detector, 40-180 ms) or `blazeface` (MediaPipe's BlazeFace back-camera graph, ~40 ms, with eye
 * and mouth keypoints; the only one live tracking works with).
 */
export const detectorSpecSchema = z
  .string()
  .regex(/^(ssd|blazeface|tiny(:(128|160|224|256|288|320|352|384|416|448|480|512|544|576|608))?)$/, {
    message: 'expected "ssd", "blazeface" or "tiny:<input size, a multiple of 32 from 128 to 608>"',
  });

export function parseDetectorSpec(spec: string, minScore: { ssd: number; tiny: number; blazeface: number }): DetectorSpec {
  const [kind, size] = detectorSpecSchema.parse(spec).split(':');
  if (kind === 'ssd') return { kind: 'ssd', inputSize: 0, minScore: minScore.ssd };
  if (kind === 'blazeface') return { kind: 'blazeface', inputSize: 256, minScore: minScore.blazeface };
  return { kind: 'tiny', inputSize: Number(size ?? 512), minScore: minScore.tiny };
}

const intFromEnv = (fallback: number) => z.coerce.number().int().default(fallback);
const numFromEnv = (fallback: number) => z.coerce.number().default(fallback);
const booleanFlag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((value) => value === '1' || value === 'true' || value === 'yes');
const D = CONFIG_DEFAULTS;

const envSchema = z.object({
  PORT: intFromEnv(D.PORT).pipe(z.number().int().min(0).max(65535)),
  HOST: z.string().default(D.HOST),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(D.LOG_LEVEL),
  EMOTION_BACKEND: z.enum(BACKEND_CHOICES).default(D.EMOTION_BACKEND),
  MODEL_DIR: z.string().default(D.MODEL_DIR),
  /**
   * Classify each face and its mirror image and average them: `card` follows the model card (its
   * accuracy was measured that way), `off` halves the classifier's cost, `on` forces it.
   */
  EMOTION_MIRROR_AVERAGE: z.enum(MIRROR_AVERAGE_SETTINGS).default(D.EMOTION_MIRROR_AVERAGE),
  /** Poll interval for model changes besides fs.watch (watch events can be missed on some file systems). */
  MODEL_POLL_MS: intFromEnv(D.MODEL_POLL_MS).pipe(z.number().int().min(100)),
  /** Unset: DEFAULT_FACE_MODEL_DIR. */
  FACE_MODEL_DIR: z.string().optional(),
  /**
   * Detector per path: live streams trade a little recall for latency; photos and videos use SSD.
   * Measured on the six test photos (22 faces): ssd 22/22; tiny:512 (score 0.4) 21/22, none
   * invented, ~0.5x SSD's cost; tiny:416 19/22 with one double detection.
   */
  DETECTOR_LIVE: detectorSpecSchema.default(D.DETECTOR_LIVE),
  DETECTOR_UPLOAD: detectorSpecSchema.default(D.DETECTOR_UPLOAD),
  DETECTOR_VIDEO: detectorSpecSchema.default(D.DETECTOR_VIDEO),
  DETECTOR_MIN_SCORE: numFromEnv(D.DETECTOR_MIN_SCORE).pipe(z.number().min(0).max(1)),
  /** The tiny detector's scores run lower than SSD's for the same faces. */
  TINY_DETECTOR_MIN_SCORE: numFromEnv(D.TINY_DETECTOR_MIN_SCORE).pipe(z.number().min(0).max(1)),
  /** blazeface at 0.5 found all 22 faces of the six test photos and invented none. */
  BLAZEFACE_MIN_SCORE: numFromEnv(D.BLAZEFACE_MIN_SCORE).pipe(z.number().min(0).max(1)),
  BLAZEFACE_MODEL_DIR: z.string().default(D.BLAZEFACE_MODEL_DIR),
  /**
   * Live streams: `crop` runs the detector on keyframes only and follows each face in between with
   * a crop around where it was; `off` runs the detector on every frame.
   */
  LIVE_TRACKER: z.enum(['crop', 'off']).default(D.LIVE_TRACKER),
  /**
   * EMOTION_MIRROR_AVERAGE for live streams (with CLASSIFY_BATCHING off). Off by default: a live
   * label is smoothed over the last frames of its track, which averages out per-frame noise as
   * the mirror image does, at half the classifier's cost.
   */
  LIVE_MIRROR_AVERAGE: z.enum(MIRROR_AVERAGE_SETTINGS).default(D.LIVE_MIRROR_AVERAGE),
  /** With LIVE_TRACKER=crop, a keyframe at least every this many frames of a stream, and at least every LIVE_KEYFRAME_MAX_MS. */
  LIVE_KEYFRAME_INTERVAL: intFromEnv(D.LIVE_KEYFRAME_INTERVAL).pipe(z.number().int().min(1).max(1000)),
  LIVE_KEYFRAME_MAX_MS: intFromEnv(D.LIVE_KEYFRAME_MAX_MS).pipe(z.number().int().min(0).max(600_000)),
  /** A tracked face whose crop scores below this is lost; the frame then runs the detector. */
  TRACK_LOST_MIN_SCORE: numFromEnv(D.TRACK_LOST_MIN_SCORE).pipe(z.number().min(0.05).max(1)),
  /**
   * Mean grey-level difference (0-255) of two consecutive frames' 32x32 thumbnails above which a
   * frame counts as a scene cut: every track ends (live streams and video jobs), and a live frame
   * runs the detector. Measured on the test clips: 52-85 at cuts, at most 10.4 elsewhere.
   */
  SCENE_CUT_THRESHOLD: numFromEnv(D.SCENE_CUT_THRESHOLD).pipe(z.number().min(1).max(255)),
  /**
   * `on`: faces of all frames in flight share classifier batches (the dynamic batcher; pays on
   * GPUs); `off`: each frame is classified in the worker that located its faces (one thread hop a
   * frame; pays on CPU backends); `auto`: on for EMOTION_BACKEND=tensorflow, off otherwise.
   */
  CLASSIFY_BATCHING: z.enum(['auto', 'on', 'off']).default(D.CLASSIFY_BATCHING),
  /**
   * With CLASSIFY_BATCHING off: frames waiting for a worker go to it together, up to this many,
   * and their faces share one classifier batch (1 = one frame a call).
   */
  WORKER_MAX_FRAMES: intFromEnv(D.WORKER_MAX_FRAMES).pipe(z.number().int().min(1).max(32)),
  /** Faces smaller than this (box side in source pixels) are skipped: too few pixels to read. */
  MIN_FACE_SIZE: intFromEnv(D.MIN_FACE_SIZE).pipe(z.number().int().min(1)),
  /** Dynamic batcher: a batch runs when it is full or when its oldest face waited this long. */
  BATCH_MAX_SIZE: intFromEnv(D.BATCH_MAX_SIZE).pipe(z.number().int().min(1).max(256)),
  BATCH_MAX_DELAY_MS: numFromEnv(D.BATCH_MAX_DELAY_MS).pipe(z.number().min(0).max(1000)),
  BATCH_MAX_QUEUE: intFromEnv(D.BATCH_MAX_QUEUE).pipe(z.number().int().min(1)),
  /** Worker threads, each with its own tfjs, face-api and emotion model. */
  WORKERS: intFromEnv(D.WORKERS).pipe(z.number().int().min(1).max(32)),
  /** Frames waiting for a worker, per source, beyond which new ones are refused with queue_full. */
  WORK_QUEUE_LIVE: intFromEnv(D.WORK_QUEUE_LIVE).pipe(z.number().int().min(1)),
  WORK_QUEUE_UPLOAD: intFromEnv(D.WORK_QUEUE_UPLOAD).pipe(z.number().int().min(1)),
  WORK_QUEUE_VIDEO: intFromEnv(D.WORK_QUEUE_VIDEO).pipe(z.number().int().min(1)),
  MAX_IMAGE_BYTES: intFromEnv(D.MAX_IMAGE_BYTES).pipe(z.number().int().min(1024)),
  MAX_IMAGE_PIXELS: intFromEnv(D.MAX_IMAGE_PIXELS).pipe(z.number().int().min(64 * 64)),
  MAX_SESSIONS: intFromEnv(D.MAX_SESSIONS).pipe(z.number().int().min(1)),
  MAX_PARTICIPANTS_PER_SESSION: intFromEnv(D.MAX_PARTICIPANTS_PER_SESSION).pipe(z.number().int().min(1)),
  /** Timeline samples kept per track and tracks kept per participant (oldest dropped first). */
  TIMELINE_MAX_SAMPLES: intFromEnv(D.TIMELINE_MAX_SAMPLES).pipe(z.number().int().min(1)),
  TIMELINE_MAX_TRACKS: intFromEnv(D.TIMELINE_MAX_TRACKS).pipe(z.number().int().min(1)),
  /** A track not seen for this long is closed; a face reappearing later gets a new trackId. */
  TRACK_MAX_AGE_MS: intFromEnv(D.TRACK_MAX_AGE_MS).pipe(z.number().int().min(1)),
  /** EMA time constant of smoothed probabilities. */
  SMOOTHING_TAU_MS: numFromEnv(D.SMOOTHING_TAU_MS).pipe(z.number().min(0)),
  CLIENT_DIR: z.string().default(D.CLIENT_DIR),
  SHUTDOWN_GRACE_MS: intFromEnv(D.SHUTDOWN_GRACE_MS).pipe(z.number().int().min(0)),
  MOODWIRE_DATA_DIR: z.string().min(1).default(D.MOODWIRE_DATA_DIR),
  VIDEO_MAX_UPLOAD_MB: numFromEnv(D.VIDEO_MAX_UPLOAD_MB).pipe(z.number().positive().max(100_000)),
  VIDEO_SAMPLE_FPS: numFromEnv(D.VIDEO_SAMPLE_FPS).pipe(z.number().min(0.1).max(60)),
  VIDEO_MAX_SIDE_PX: intFromEnv(D.VIDEO_MAX_SIDE_PX).pipe(z.number().int().min(64).max(4096)),
  VIDEO_JOB_CONCURRENCY: intFromEnv(D.VIDEO_JOB_CONCURRENCY).pipe(z.number().int().min(1).max(16)),
  VIDEO_MAX_QUEUED_JOBS: intFromEnv(D.VIDEO_MAX_QUEUED_JOBS).pipe(z.number().int().min(0).max(10_000)),
  VIDEO_MAX_INFLIGHT_FRAMES: intFromEnv(D.VIDEO_MAX_INFLIGHT_FRAMES).pipe(z.number().int().min(1).max(64)),
  VIDEO_KEEP_UPLOADS: booleanFlag.default(D.VIDEO_KEEP_UPLOADS),
  /** A path to the binary, or a command name looked up on PATH; empty or unset: PATH, else npm. */
  FFMPEG_PATH: z.string().optional(),
  FFPROBE_PATH: z.string().optional(),
  /** The directories searched for ffmpeg and ffprobe. */
  PATH: z.string().optional(),
});

/** The video service's settings. */
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

/** Which ffmpeg and ffprobe to run; `server/video/binaries.ts` resolves them from this. */
export interface FfmpegConfig {
  /** FFMPEG_PATH: an absolute path, or a command name to look up on `searchPath`; undefined when unset. */
  ffmpegPath: string | undefined;
  /** FFPROBE_PATH, like `ffmpegPath`. */
  ffprobePath: string | undefined;
  /** PATH: directories separated by `path.delimiter`. */
  searchPath: string;
}

/** Face tracking and smoothing, the same for live streams and video jobs. */
export interface TrackingConfig {
  maxAgeMs: number;
  smoothingTauMs: number;
  /** SCENE_CUT_THRESHOLD: a frame whose thumbnail differs more than this from the previous one ends every track */
  sceneCutThreshold: number;
}

/** How live streams locate faces from frame to frame. */
export interface LiveTrackingConfig {
  /** follow faces between keyframes (LIVE_TRACKER=crop) */
  enabled: boolean;
  keyframe: KeyframePolicy;
  options: TrackingOptions;
  sceneCutThreshold: number;
  /** LIVE_MIRROR_AVERAGE */
  mirrorAverage: MirrorAverageSetting;
}

export interface Config {
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  backend: z.infer<typeof envSchema>['EMOTION_BACKEND'];
  modelDir: string;
  mirrorAverage: MirrorAverageSetting;
  modelPollMs: number;
  faceModelDir: string;
  blazeModelDir: string;
  /** by FrameSource; `image` (POST /api/v1/analyze) is set by DETECTOR_UPLOAD */
  detectors: { live: DetectorSpec; image: DetectorSpec; video: DetectorSpec };
  liveTracking: LiveTrackingConfig;
  /** CLASSIFY_BATCHING as asked; inference/engine.ts resolves `auto` once the backend is known */
  classifyBatching: 'auto' | 'on' | 'off';
  /** WORKER_MAX_FRAMES */
  workerMaxFrames: number;
  minFaceSize: number;
  batch: { maxSize: number; maxDelayMs: number; maxQueue: number };
  workers: number;
  /** by FrameSource; `image` is set by WORK_QUEUE_UPLOAD */
  workQueue: { live: number; image: number; video: number };
  limits: { maxImageBytes: number; maxImagePixels: number };
  sessions: { maxSessions: number; maxParticipants: number; timelineMaxSamples: number; timelineMaxTracks: number };
  tracking: TrackingConfig;
  clientDir: string;
  shutdownGraceMs: number;
  video: VideoConfig;
  ffmpeg: FfmpegConfig;
}

/** A relative path setting, resolved against the repository root. */
function fromRepoRoot(value: string): string {
  return path.resolve(repoRoot, value);
}

/** An executable setting: a path (relative ones from the repository root) or a bare command name, kept as is. */
function executableSetting(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const isCommandName = !value.includes('/') && !value.includes(path.sep);
  return isCommandName ? value : fromRepoRoot(value);
}

/** Every bad setting on one line: `PORT="abc": Invalid input: expected number, received NaN; ...`. */
function describeConfigIssues(error: z.ZodError, env: Record<string, string | undefined>): string {
  return error.issues
    .map((issue) => {
      const name = String(issue.path[0] ?? '(environment)');
      const value = env[name];
      return `${name}${value === undefined ? '' : `=${JSON.stringify(value)}`}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Parses the environment (or any string map, for tests) into a Config. A bad setting throws an
 * Error whose message is one line starting with "invalid configuration:" and naming every bad
 * setting with its value.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid configuration: ${describeConfigIssues(parsed.error, env)}`);
  const e = parsed.data;
  const minScore = { ssd: e.DETECTOR_MIN_SCORE, tiny: e.TINY_DETECTOR_MIN_SCORE, blazeface: e.BLAZEFACE_MIN_SCORE };
  const liveDetector = parseDetectorSpec(e.DETECTOR_LIVE, minScore);
  if (e.LIVE_TRACKER === 'crop' && liveDetector.kind !== 'blazeface') {
    throw new Error(`invalid configuration: LIVE_TRACKER=crop needs DETECTOR_LIVE=blazeface (got ${e.DETECTOR_LIVE}); set LIVE_TRACKER=off to run ${e.DETECTOR_LIVE} on every frame`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    backend: e.EMOTION_BACKEND,
    modelDir: fromRepoRoot(e.MODEL_DIR),
    mirrorAverage: e.EMOTION_MIRROR_AVERAGE,
    modelPollMs: e.MODEL_POLL_MS,
    faceModelDir: e.FACE_MODEL_DIR ? fromRepoRoot(e.FACE_MODEL_DIR) : DEFAULT_FACE_MODEL_DIR,
    blazeModelDir: fromRepoRoot(e.BLAZEFACE_MODEL_DIR),
    liveTracking: {
      enabled: e.LIVE_TRACKER === 'crop',
      keyframe: { intervalFrames: e.LIVE_KEYFRAME_INTERVAL, intervalMs: e.LIVE_KEYFRAME_MAX_MS },
      options: { ...DEFAULT_TRACKING, minScore: e.TRACK_LOST_MIN_SCORE },
      sceneCutThreshold: e.SCENE_CUT_THRESHOLD,
      mirrorAverage: e.LIVE_MIRROR_AVERAGE,
    },
    classifyBatching: e.CLASSIFY_BATCHING,
    workerMaxFrames: e.WORKER_MAX_FRAMES,
    detectors: {
      live: liveDetector,
      image: parseDetectorSpec(e.DETECTOR_UPLOAD, minScore),
      video: parseDetectorSpec(e.DETECTOR_VIDEO, minScore),
    },
    minFaceSize: e.MIN_FACE_SIZE,
    batch: { maxSize: e.BATCH_MAX_SIZE, maxDelayMs: e.BATCH_MAX_DELAY_MS, maxQueue: e.BATCH_MAX_QUEUE },
    workers: e.WORKERS,
    workQueue: { live: e.WORK_QUEUE_LIVE, image: e.WORK_QUEUE_UPLOAD, video: e.WORK_QUEUE_VIDEO },
    limits: { maxImageBytes: e.MAX_IMAGE_BYTES, maxImagePixels: e.MAX_IMAGE_PIXELS },
    sessions: {
      maxSessions: e.MAX_SESSIONS,
      maxParticipants: e.MAX_PARTICIPANTS_PER_SESSION,
      timelineMaxSamples: e.TIMELINE_MAX_SAMPLES,
      timelineMaxTracks: e.TIMELINE_MAX_TRACKS,
    },
    tracking: { maxAgeMs: e.TRACK_MAX_AGE_MS, smoothingTauMs: e.SMOOTHING_TAU_MS, sceneCutThreshold: e.SCENE_CUT_THRESHOLD },
    clientDir: fromRepoRoot(e.CLIENT_DIR),
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    video: {
      dataDir: fromRepoRoot(e.MOODWIRE_DATA_DIR),
      maxUploadBytes: Math.round(e.VIDEO_MAX_UPLOAD_MB * 1024 * 1024),
      sampleFps: e.VIDEO_SAMPLE_FPS,
      maxSidePx: e.VIDEO_MAX_SIDE_PX,
      jobConcurrency: e.VIDEO_JOB_CONCURRENCY,
      maxQueuedJobs: e.VIDEO_MAX_QUEUED_JOBS,
      maxInFlightFrames: e.VIDEO_MAX_INFLIGHT_FRAMES,
      keepUploads: e.VIDEO_KEEP_UPLOADS,
    },
    ffmpeg: {
      ffmpegPath: executableSetting(e.FFMPEG_PATH),
      ffprobePath: executableSetting(e.FFPROBE_PATH),
      // Windows spells it Path; a spread copy of process.env keeps that spelling.
      searchPath: e.PATH ?? env.Path ?? '',
    },
  };
}
