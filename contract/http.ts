/**
 * The HTTP API's contract, shared by the server, the browser client and the tests: zod schemas for
 * what the video routes accept (upload options, timeline query, job id) and for every JSON answer
 * (single-image analysis, video job, video timeline, errors); the TypeScript types are inferred
 * from them. The server validates requests with the input schemas and types its answers with the
 * output types; tests parse real answers with the output schemas. The browser client imports the
 * types only, so zod stays out of its bundle. docs/protocol.md describes the same routes in prose.
 */
import { z } from 'zod';
import { EMOTIONS, type EmotionScores } from './emotions.ts';
import { ERROR_CODES, type ErrorCode } from './errors.ts';
import type { Box } from './geometry.ts';
import { type Face, type FrameTimings, TIMING_KEYS } from './socket.ts';

/** Compile-time check that a schema's output is exactly an existing contract type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

// ---- inputs of /api/v1/videos

/** Query or multipart fields of POST /api/v1/videos; without `fps`, VIDEO_SAMPLE_FPS applies. */
const FPS_RANGE = 'fps must be a number of frames per second from 0.1 to 30';
const THUMBNAILS_FLAG = 'thumbnails must be true or false';
export const videoUploadOptionsSchema = z.object({
  fps: z.coerce.number({ error: FPS_RANGE }).min(0.1, { error: FPS_RANGE }).max(30, { error: FPS_RANGE }).optional(),
  /** keep a small JPEG of each face track with the results (deleted with the job); default false: no picture is stored */
  thumbnails: z.stringbool({ error: THUMBNAILS_FLAG }).optional(),
});
export type VideoUploadOptions = z.infer<typeof videoUploadOptionsSchema>;

/** Query of GET /api/v1/videos/:id/timeline. */
export const timelineQuerySchema = z.object({
  /** `csv`: one row per track and sample; `summary-csv`: one row per track */
  format: z.enum(['json', 'csv', 'summary-csv']).default('json'),
});
export type TimelineQuery = z.infer<typeof timelineQuerySchema>;

/** The `:id` of every /api/v1/videos/:id route (the server answers 404 not_found to anything else). */
export const videoJobIdSchema = z.uuid();

/** Query of GET /api/v1/videos (the caller's jobs, newest first). */
export const videoListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

// ---- sessions and invites

/** What an invite lets its holder do in the session: `participant` sends frames, `observer` only watches. */
export const inviteRoleSchema = z.enum(['participant', 'observer']);
export type InviteRole = z.infer<typeof inviteRoleSchema>;

/** JSON body of POST /api/v1/sessions/:sessionId/invites; without `ttlSec`, INVITE_DEFAULT_TTL_SEC. */
export const inviteRequestSchema = z
  .object({
    role: inviteRoleSchema.default('participant'),
    ttlSec: z.number().int().min(60).optional(),
  })
  .strict();
export type InviteRequest = z.input<typeof inviteRequestSchema>;

/** 201 answer: `token` goes in the socket.io handshake as `auth: {token}`; `url` opens the live page with it (in the fragment). */
export const inviteSchema = z.object({
  token: z.string(),
  sessionId: z.string(),
  role: inviteRoleSchema,
  expiresAt: z.iso.datetime(),
  url: z.string(),
});
export type Invite = z.infer<typeof inviteSchema>;

// ---- shapes shared with the socket protocol (contract/socket.ts), checked to be the same types

export const emotionSchema = z.enum(EMOTIONS);
/** One probability per emotion, every emotion present. */
export const emotionScoresSchema = z.record(emotionSchema, z.number());
export const boxSchema = z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() });
export const faceSchema = z.object({
  trackId: z.number().int(),
  box: boxSchema,
  score: z.number(),
  emotions: emotionScoresSchema,
  dominant: emotionSchema,
  smoothed: emotionScoresSchema,
  origin: z.enum(['detection', 'tracking']),
  uncertain: z.boolean(),
});
export const frameTimingsSchema = z.partialRecord(z.enum(TIMING_KEYS), z.number());

type SchemasMatchContract = [
  Assert<Same<z.infer<typeof emotionScoresSchema>, EmotionScores>>,
  Assert<Same<z.infer<typeof boxSchema>, Box>>,
  Assert<Same<z.infer<typeof faceSchema>, Face>>,
  Assert<Same<z.infer<typeof frameTimingsSchema>, FrameTimings>>,
];

// ---- answers

/** 200 answer of POST /api/v1/analyze: the faces of one image, in the same shape as live frames. */
export const analyzeResultSchema = z.object({
  width: z.number().int(),
  height: z.number().int(),
  faces: z.array(faceSchema),
  timings: frameTimingsSchema,
});
export type AnalyzeResult = z.infer<typeof analyzeResultSchema>;

export const videoJobStatusSchema = z.enum(['queued', 'running', 'done', 'failed']);
export type VideoJobStatus = z.infer<typeof videoJobStatusSchema>;

/** 202 answer of POST /api/v1/videos (its Location header is the job's URL). */
export const videoAcceptedSchema = z.object({ id: z.string(), status: videoJobStatusSchema });
export type VideoAccepted = z.infer<typeof videoAcceptedSchema>;

/** GET /api/v1/videos/:id: a job as clients see it (no server paths). */
export const videoJobViewSchema = z.object({
  id: z.string(),
  status: videoJobStatusSchema,
  /** 0..1 */
  progress: z.number(),
  durationSec: z.number(),
  sampledFps: z.number(),
  framesAnalyzed: z.number().int(),
  source: z.object({ name: z.string(), width: z.number().int(), height: z.number().int(), sizeBytes: z.number().int() }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  /** why the job failed; only on failed jobs */
  error: z.string().optional(),
});
export type VideoJobView = z.infer<typeof videoJobViewSchema>;

/** GET /api/v1/videos: the caller's jobs, newest first. */
export const videoJobListSchema = z.object({ jobs: z.array(videoJobViewSchema) });
export type VideoJobList = z.infer<typeof videoJobListSchema>;

/** One sample of one face track of a video. */
export const videoTrackSampleSchema = z.object({
  t: z.number().meta({ description: 'media time of the sample, in seconds from the start of the video' }),
  /** source-video pixels */
  box: boxSchema,
  score: z.number(),
  /** raw classifier probabilities for this sample */
  emotions: emotionScoresSchema,
  /** probabilities smoothed over the track (what a live view shows) */
  smoothed: emotionScoresSchema,
  dominant: emotionSchema,
});
export type VideoTrackSample = z.infer<typeof videoTrackSampleSchema>;

export const videoTrackSummarySchema = z.object({
  samples: z.number().int(),
  firstT: z.number().meta({ description: 'media time of the first sample, seconds' }),
  lastT: z.number().meta({ description: 'media time of the last sample, seconds' }),
  /** samples times the sampling period: how long the face was seen */
  timeOnScreenSec: z.number().meta({ description: 'samples times the sampling period, seconds' }),
  /** mean of the raw probabilities over the track's samples */
  meanEmotions: emotionScoresSchema,
  /** dominant emotion of the mean distribution */
  dominant: emotionSchema,
  /** fraction of samples in which each emotion was the dominant one (sums to 1) */
  dominantShare: emotionScoresSchema,
});
export type VideoTrackSummary = z.infer<typeof videoTrackSummarySchema>;

export const videoTrackTimelineSchema = z.object({
  trackId: z.number().int(),
  /** URL path of a JPEG of this face (its best-scored sample), when the upload asked for thumbnails */
  thumbnail: z.string().optional(),
  samples: z.array(videoTrackSampleSchema),
  summary: videoTrackSummarySchema,
});
export type VideoTrackTimeline = z.infer<typeof videoTrackTimelineSchema>;

/** What shaped a job's results, recorded when its analysis started. */
export const videoAnalysisSettingsSchema = z.object({
  /** the emotion model's card version */
  modelVersion: z.string(),
  /** DETECTOR_VIDEO, e.g. "ssd" */
  detector: z.string(),
  /** MIN_FACE_SIZE: smaller faces are counted in `skippedSmallFaces`, not analysed */
  minFaceSize: z.number().int(),
  /** VIDEO_MAX_SIDE_PX: frames were scaled down to this longer side for analysis */
  maxSidePx: z.number().int(),
  trackMaxAgeMs: z.number(),
  smoothingTauMs: z.number(),
  sceneCutThreshold: z.number(),
});
export type VideoAnalysisSettings = z.infer<typeof videoAnalysisSettingsSchema>;

/** GET /api/v1/videos/:id/timeline (JSON; `?format=csv` answers the same samples as CSV rows). */
export const videoTimelineSchema = z.object({
  id: z.string(),
  status: videoJobStatusSchema,
  /** false while the job runs or after it failed: the timeline holds what was analysed so far */
  complete: z.boolean(),
  durationSec: z.number().meta({ description: 'length of the video, seconds' }),
  sampledFps: z.number().meta({ description: 'samples analysed per second of video' }),
  /** the uploaded file's name and its frame size (boxes are in these pixels) */
  source: z.object({ name: z.string(), width: z.number().int(), height: z.number().int() }),
  /** null until the analysis starts */
  analysis: videoAnalysisSettingsSchema.nullable(),
  /** faces found but smaller than MIN_FACE_SIZE in all samples so far (not in `tracks`) */
  skippedSmallFaces: z.number().int(),
  /** every sample, including those without faces (face count 0), so gaps are explicit */
  frames: z.array(z.object({ t: z.number(), faceCount: z.number().int() })),
  /** ordered by first appearance */
  tracks: z.array(videoTrackTimelineSchema),
});
export type VideoTimeline = z.infer<typeof videoTimelineSchema>;

const errorCodes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** Every refusal of an HTTP route, with the status `ERROR_CODES[code]`. */
export const httpErrorSchema = z.object({
  error: z.object({ code: z.enum(errorCodes), message: z.string() }),
});
export type HttpError = z.infer<typeof httpErrorSchema>;
