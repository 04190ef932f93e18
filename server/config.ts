/**
 * Every setting of the server, read from the environment once and validated with zod. Times are
 * milliseconds unless the name says otherwise. Entry points (main.ts, the CLI, the benches) hand
 * the environment to `loadConfig`; every other module receives its slice of the typed `Config`
 * (the video service: `video`, `ffmpeg`, `tracking`) and never reads `process.env`. Relative
 * paths in settings resolve against the repository root, whatever the working directory.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BACKEND_CHOICES } from '../contract/backend-choices.ts';
import { MIRROR_AVERAGE_SETTINGS, type MirrorAverageSetting } from '../contract/model-card.ts';
import type { DetectorSpec } from './pipeline/detect.ts';
import { DEFAULT_TRACKING, type TrackingOptions } from './pipeline/tracking-options.ts';
import type { KeyframePolicy } from './pipeline/keyframes.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Folder of face-api's own weights inside the npm package (never fetched from the network). */
export const DEFAULT_FACE_MODEL_DIR = path.join(repoRoot, 'node_modules/@vladmandic/face-api/model');

/** The default of every setting, by environment variable (README's settings table lists the same). */
export const CONFIG_DEFAULTS = {
  PORT: 3000,
  /** loopback: with no API keys the server serves only this machine (see MOODWIRE_API_KEYS) */
  HOST: '127.0.0.1',
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
  LIVE_MOTION_STEPS: DEFAULT_TRACKING.motion.maxSteps,
  TRACK_MOTION_MAX_ERROR: DEFAULT_TRACKING.motion.maxError,
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
  VIDEO_MAX_DURATION_SEC: 3 * 3600,
  VIDEO_MAX_FRAMES_PER_JOB: 3 * 3600 * 5,
  VIDEO_MAX_ATTEMPTS: 3,
  VIDEO_RETENTION_HOURS: 24,
  SESSION_GRACE_MS: 30_000,
  MOODWIRE_AUTH: 'on',
  INVITE_DEFAULT_TTL_SEC: 3600,
  INVITE_MAX_TTL_SEC: 7 * 24 * 3600,
  CORS_ORIGINS: '',
  TRUST_PROXY: 'false',
  MAX_CONNECTIONS_PER_ADDRESS: 32,
  MAX_SESSIONS_PER_ADDRESS: 8,
  SOCKET_EVENTS_PER_SECOND: 40,
  MAX_VIDEO_SUBSCRIPTIONS_PER_SOCKET: 16,
  MAX_CONCURRENT_UPLOADS_PER_CLIENT: 2,
  VIDEO_MAX_QUEUED_JOBS_PER_CLIENT: 4,
  CLUSTER_HEARTBEAT_MS: 2000,
  NODE_ROLE: 'all',
  VIDEO_JOB_LOCK_SEC: 30,
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
   * With LIVE_TRACKER=crop, at most this many frames in a row a face is moved by matching its grey
   * patch from the frame the detector last saw it on, before the crop detector runs again; 0 runs
   * the crop detector on every tracked frame.
   */
  LIVE_MOTION_STEPS: intFromEnv(D.LIVE_MOTION_STEPS).pipe(z.number().int().min(0).max(10)),
  /** A motion step whose patch match error (mean difference over the patch's own contrast) is above this hands the face to the crop detector. */
  TRACK_MOTION_MAX_ERROR: numFromEnv(D.TRACK_MOTION_MAX_ERROR).pipe(z.number().min(0.05).max(1)),
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
  /** Where uploads are written while they wait and run; unset: <MOODWIRE_DATA_DIR>/video/uploads. A volume every node mounts in a cluster. */
  VIDEO_UPLOAD_DIR: z.string().min(1).optional(),
  /** Longest video a job takes (probed duration), and most frames it may analyse (duration x fps). */
  VIDEO_MAX_DURATION_SEC: numFromEnv(D.VIDEO_MAX_DURATION_SEC).pipe(z.number().positive()),
  VIDEO_MAX_FRAMES_PER_JOB: intFromEnv(D.VIDEO_MAX_FRAMES_PER_JOB).pipe(z.number().int().min(1)),
  /** A job interrupted this many times (a crash or a restart mid-job) fails with the reason instead of running again. */
  VIDEO_MAX_ATTEMPTS: intFromEnv(D.VIDEO_MAX_ATTEMPTS).pipe(z.number().int().min(1).max(100)),
  /** Finished jobs (done or failed) and their timelines are deleted this long after they end; 0 keeps them. */
  VIDEO_RETENTION_HOURS: numFromEnv(D.VIDEO_RETENTION_HOURS).pipe(z.number().min(0)),
  /** A session whose last participant left is forgotten (timelines included) after this long, unless someone joins again. */
  SESSION_GRACE_MS: intFromEnv(D.SESSION_GRACE_MS).pipe(z.number().int().min(0).max(3_600_000)),
  /** Comma-separated API keys (at least 16 characters each); any of them opens /api/v1 and the socket. */
  MOODWIRE_API_KEYS: z.string().optional(),
  /** A file of API keys, one per line (blank lines and # comments ignored); added to MOODWIRE_API_KEYS. */
  MOODWIRE_API_KEYS_FILE: z.string().optional(),
  /** `off` turns every credential check off (anyone who reaches the port reads everything); logged as a warning at every start. */
  MOODWIRE_AUTH: z.enum(['on', 'off']).default(D.MOODWIRE_AUTH),
  /** Signs invite tokens (at least 32 characters); unset: derived from the API keys, so nodes with the same keys accept each other's invites. */
  MOODWIRE_TOKEN_SECRET: z.string().min(32).optional(),
  /** Lifetime of an invite when the request names none, and the longest one may ask for. */
  INVITE_DEFAULT_TTL_SEC: intFromEnv(D.INVITE_DEFAULT_TTL_SEC).pipe(z.number().int().min(60)),
  INVITE_MAX_TTL_SEC: intFromEnv(D.INVITE_MAX_TTL_SEC).pipe(z.number().int().min(60)),
  /** The live page's address in invite links (e.g. https://moodwire.example.com); unset: the address the request came to. */
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Comma-separated origins (https://app.example.com) allowed to call the API and open sockets besides the server's own; `*` allows any. */
  CORS_ORIGINS: z.string().default(D.CORS_ORIGINS),
  /** Express's `trust proxy`: `false`, `true`, a hop count, or comma-separated addresses/subnets of your proxies. Decides the client address every per-address limit uses. */
  TRUST_PROXY: z.string().default(D.TRUST_PROXY),
  /** Serve /metrics on this port (no credential; bind it to a private address with METRICS_HOST) instead of the main one. */
  METRICS_PORT: intFromEnv(0).pipe(z.number().int().min(0).max(65535)).optional(),
  METRICS_HOST: z.string().optional(),
  /** Per client address: open socket.io connections, and live sessions it created that still exist. */
  MAX_CONNECTIONS_PER_ADDRESS: intFromEnv(D.MAX_CONNECTIONS_PER_ADDRESS).pipe(z.number().int().min(1)),
  MAX_SESSIONS_PER_ADDRESS: intFromEnv(D.MAX_SESSIONS_PER_ADDRESS).pipe(z.number().int().min(1)),
  /** Events one socket may send per second (frames included); beyond it they are refused with rate_limited. */
  SOCKET_EVENTS_PER_SECOND: intFromEnv(D.SOCKET_EVENTS_PER_SECOND).pipe(z.number().int().min(1)),
  MAX_VIDEO_SUBSCRIPTIONS_PER_SOCKET: intFromEnv(D.MAX_VIDEO_SUBSCRIPTIONS_PER_SOCKET).pipe(z.number().int().min(1)),
  /** Per API key (or per address without keys): uploads arriving at once (counted before the body), and jobs queued or running. */
  MAX_CONCURRENT_UPLOADS_PER_CLIENT: intFromEnv(D.MAX_CONCURRENT_UPLOADS_PER_CLIENT).pipe(z.number().int().min(1)),
  VIDEO_MAX_QUEUED_JOBS_PER_CLIENT: intFromEnv(D.VIDEO_MAX_QUEUED_JOBS_PER_CLIENT).pipe(z.number().int().min(1)),
  /** redis://[user:password@]host:port[/db] or rediss://...: sessions and broadcasts shared by every node on that Redis; unset: one node, in memory. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/[^\s]+$/, { message: 'expected redis://host:port or rediss://host:port' })
    .refine((value) => URL.canParse(value) && new URL(value).hostname !== '', { message: 'expected redis://host:port or rediss://host:port' })
    .optional(),
  /** This node's name in Redis, logs and metrics; unset: <hostname>-<pid>. */
  NODE_ID: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, { message: 'expected 1-100 characters of A-Z a-z 0-9 _ . : -' }).optional(),
  /** With REDIS_URL: how often a node renews its liveness key (which lives 3x this) and looks for dead nodes and expired sessions. */
  CLUSTER_HEARTBEAT_MS: intFromEnv(D.CLUSTER_HEARTBEAT_MS).pipe(z.number().int().min(100).max(60_000)),
  /** What this node does: `all` (default), `api` (uploads and reads, runs no video job), `worker` (runs video jobs); api and worker need REDIS_URL. */
  NODE_ROLE: z.enum(['all', 'api', 'worker']).default(D.NODE_ROLE),
  /**
   * With REDIS_URL: BullMQ's lock on a running video job; a node that died mid-job gives its job up to another node about 1-3x this later.
   * Also how often nodes that run jobs re-queue queued records BullMQ has no job for, once they are this old (video/service.ts).
   */
  VIDEO_JOB_LOCK_SEC: numFromEnv(D.VIDEO_JOB_LOCK_SEC).pipe(z.number().min(1).max(3600)),
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
  /** VIDEO_UPLOAD_DIR: where uploads are written while they wait and run. */
  uploadDir: string;
  /** Longest accepted video (probed duration), and most frames one job may analyse. */
  maxDurationSec: number;
  maxFramesPerJob: number;
  /** A job is started at most this many times (restarts after crashes count). */
  maxAttempts: number;
  /** Finished jobs are deleted this long after they end; 0 keeps them. */
  retentionMs: number;
  /** Per client (API key, or address without keys): uploads arriving at once, jobs queued or running. */
  maxConcurrentUploadsPerClient: number;
  maxQueuedJobsPerClient: number;
}

/** Who may do what (see server/security/). */
export interface SecurityConfig {
  /** MOODWIRE_AUTH=off: no credential checks at all */
  enabled: boolean;
  /** MOODWIRE_API_KEYS plus MOODWIRE_API_KEYS_FILE; empty: only loopback clients are served */
  apiKeys: string[];
  /** HMAC key of invite tokens */
  tokenSecret: Uint8Array;
  inviteDefaultTtlSec: number;
  inviteMaxTtlSec: number;
  /** PUBLIC_URL without a trailing slash */
  publicUrl: string | undefined;
  /** extra allowed origins; '*' allows any */
  corsOrigins: string[] | '*';
  /** express's `trust proxy` value */
  trustProxy: boolean | number | string[];
}

/** What one client may use at once (per address, per socket). */
export interface ClientLimitsConfig {
  maxConnectionsPerAddress: number;
  maxSessionsPerAddress: number;
  socketEventsPerSecond: number;
  maxVideoSubscriptionsPerSocket: number;
}

/** Several nodes on one Redis (REDIS_URL); see server/cluster/. */
export interface ClusterConfig {
  /** REDIS_URL; undefined: one node with in-memory sessions */
  redisUrl: string | undefined;
  /** NODE_ID, default <hostname>-<pid> */
  nodeId: string;
  /** CLUSTER_HEARTBEAT_MS: the liveness key lives 3x this; dead nodes and expired sessions are looked for every this often */
  heartbeatMs: number;
  /** NODE_ROLE: `api` runs no video job; `worker` runs them; `all` both (the only role without REDIS_URL) */
  role: 'all' | 'api' | 'worker';
  /** VIDEO_JOB_LOCK_SEC in ms: BullMQ's lock duration and stalled-check interval */
  videoJobLockMs: number;
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
  sessions: { maxSessions: number; maxParticipants: number; timelineMaxSamples: number; timelineMaxTracks: number; graceMs: number };
  security: SecurityConfig;
  clientLimits: ClientLimitsConfig;
  /** METRICS_PORT: /metrics on its own listener instead of the main port */
  metrics: { port: number | undefined; host: string };
  tracking: TrackingConfig;
  clientDir: string;
  shutdownGraceMs: number;
  video: VideoConfig;
  ffmpeg: FfmpegConfig;
  cluster: ClusterConfig;
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

/** Addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** MOODWIRE_API_KEYS and the lines of MOODWIRE_API_KEYS_FILE, checked; throws a configuration error. */
function readApiKeys(list: string | undefined, file: string | undefined): string[] {
  const keys = (list ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if (file) {
    let text: string;
    try {
      text = readFileSync(fromRepoRoot(file), 'utf8');
    } catch (error) {
      throw new Error(`invalid configuration: MOODWIRE_API_KEYS_FILE=${JSON.stringify(file)}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    keys.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  const weak = keys.filter((k) => k.length < 16 || /[\s,]/.test(k));
  if (weak.length > 0) throw new Error(`invalid configuration: MOODWIRE_API_KEYS: ${weak.length} key(s) shorter than 16 characters or holding spaces or commas`);
  return [...new Set(keys)];
}

/** The invite-signing key: MOODWIRE_TOKEN_SECRET, else derived from the API keys (same keys, same secret on every node), else random for this process. */
function tokenSecret(explicit: string | undefined, apiKeys: string[]): Uint8Array {
  if (explicit) return new TextEncoder().encode(explicit);
  if (apiKeys.length === 0) return randomBytes(32);
  return new Uint8Array(hkdfSync('sha256', [...apiKeys].sort().join('\n'), 'moodwire', 'invite tokens', 32));
}

function parseTrustProxy(value: string): boolean | number | string[] {
  const v = value.trim().toLowerCase();
  if (v === 'false' || v === '0' || v === '') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function parseOrigins(value: string): string[] | '*' {
  if (value.trim() === '*') return '*';
  const origins = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const origin of origins) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new Error(`invalid configuration: CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.example.com`);
    }
    if (parsed.origin !== origin.replace(/\/$/, '')) throw new Error(`invalid configuration: CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path)`);
  }
  return origins.map((o) => o.replace(/\/$/, ''));
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
  const apiKeys = readApiKeys(e.MOODWIRE_API_KEYS, e.MOODWIRE_API_KEYS_FILE);
  const authEnabled = e.MOODWIRE_AUTH === 'on';
  // Protected mode (as Redis's): without credentials, only this machine may connect.
  if (authEnabled && apiKeys.length === 0 && !isLoopbackHost(e.HOST)) {
    throw new Error(
      `invalid configuration: HOST=${e.HOST} serves other machines, but no credentials are set: set MOODWIRE_API_KEYS (or MOODWIRE_API_KEYS_FILE), ` +
        'or set MOODWIRE_AUTH=off to serve anyone who reaches the port without credentials',
    );
  }
  if (e.INVITE_DEFAULT_TTL_SEC > e.INVITE_MAX_TTL_SEC) {
    throw new Error(`invalid configuration: INVITE_DEFAULT_TTL_SEC=${e.INVITE_DEFAULT_TTL_SEC} is longer than INVITE_MAX_TTL_SEC=${e.INVITE_MAX_TTL_SEC}`);
  }
  if (e.NODE_ROLE !== 'all' && e.REDIS_URL === undefined) {
    throw new Error(
      `invalid configuration: NODE_ROLE=${e.NODE_ROLE} needs REDIS_URL (api and worker nodes share video jobs through Redis); set REDIS_URL, or NODE_ROLE=all for one node`,
    );
  }
  const dataDir = fromRepoRoot(e.MOODWIRE_DATA_DIR);
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
      options: {
        ...DEFAULT_TRACKING,
        minScore: e.TRACK_LOST_MIN_SCORE,
        motion: { ...DEFAULT_TRACKING.motion, maxSteps: e.LIVE_MOTION_STEPS, maxError: e.TRACK_MOTION_MAX_ERROR },
      },
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
      graceMs: e.SESSION_GRACE_MS,
    },
    security: {
      enabled: authEnabled,
      apiKeys,
      tokenSecret: tokenSecret(e.MOODWIRE_TOKEN_SECRET, apiKeys),
      inviteDefaultTtlSec: e.INVITE_DEFAULT_TTL_SEC,
      inviteMaxTtlSec: e.INVITE_MAX_TTL_SEC,
      publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
      corsOrigins: parseOrigins(e.CORS_ORIGINS),
      trustProxy: parseTrustProxy(e.TRUST_PROXY),
    },
    clientLimits: {
      maxConnectionsPerAddress: e.MAX_CONNECTIONS_PER_ADDRESS,
      maxSessionsPerAddress: e.MAX_SESSIONS_PER_ADDRESS,
      socketEventsPerSecond: e.SOCKET_EVENTS_PER_SECOND,
      maxVideoSubscriptionsPerSocket: e.MAX_VIDEO_SUBSCRIPTIONS_PER_SOCKET,
    },
    metrics: { port: e.METRICS_PORT || undefined, host: e.METRICS_HOST ?? e.HOST },
    tracking: { maxAgeMs: e.TRACK_MAX_AGE_MS, smoothingTauMs: e.SMOOTHING_TAU_MS, sceneCutThreshold: e.SCENE_CUT_THRESHOLD },
    clientDir: fromRepoRoot(e.CLIENT_DIR),
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    video: {
      dataDir,
      maxUploadBytes: Math.round(e.VIDEO_MAX_UPLOAD_MB * 1024 * 1024),
      sampleFps: e.VIDEO_SAMPLE_FPS,
      maxSidePx: e.VIDEO_MAX_SIDE_PX,
      jobConcurrency: e.VIDEO_JOB_CONCURRENCY,
      maxQueuedJobs: e.VIDEO_MAX_QUEUED_JOBS,
      maxInFlightFrames: e.VIDEO_MAX_INFLIGHT_FRAMES,
      keepUploads: e.VIDEO_KEEP_UPLOADS,
      uploadDir: e.VIDEO_UPLOAD_DIR ? fromRepoRoot(e.VIDEO_UPLOAD_DIR) : path.join(dataDir, 'video', 'uploads'),
      maxDurationSec: e.VIDEO_MAX_DURATION_SEC,
      maxFramesPerJob: e.VIDEO_MAX_FRAMES_PER_JOB,
      maxAttempts: e.VIDEO_MAX_ATTEMPTS,
      retentionMs: e.VIDEO_RETENTION_HOURS * 3600 * 1000,
      maxConcurrentUploadsPerClient: e.MAX_CONCURRENT_UPLOADS_PER_CLIENT,
      maxQueuedJobsPerClient: e.VIDEO_MAX_QUEUED_JOBS_PER_CLIENT,
    },
    cluster: { redisUrl: e.REDIS_URL, nodeId: e.NODE_ID ?? `${os.hostname()}-${process.pid}`, heartbeatMs: e.CLUSTER_HEARTBEAT_MS, role: e.NODE_ROLE, videoJobLockMs: Math.round(e.VIDEO_JOB_LOCK_SEC * 1000) },
    ffmpeg: {
      ffmpegPath: executableSetting(e.FFMPEG_PATH),
      ffprobePath: executableSetting(e.FFPROBE_PATH),
      // Windows spells it Path; a spread copy of process.env keeps that spelling.
      searchPath: e.PATH ?? env.Path ?? '',
    },
  };
}
