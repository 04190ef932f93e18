/**
 * The video API under /api/v1/videos: upload (multipart, probed before it is queued), the caller's
 * job list, job status, timeline as JSON or CSV, delete. Every job belongs to the caller who
 * uploaded it (`callerOf(res).owner`): another owner's job answers 404 like a missing one.
 * Per-client limits (`limitKey(caller)`) are checked before the body is read. Requests are
 * validated with the schemas of contract/http.ts and answers are typed by its types. The routes
 * depend only on `VideoRoutesDeps`, which the video service builds; errors go to the app's error
 * handler as AppErrors.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { type ErrorRequestHandler, type NextFunction, type Request, type Response, type Router } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import {
  timelineQuerySchema,
  type VideoAccepted,
  videoJobIdSchema,
  type VideoJobList,
  type VideoJobView,
  videoListQuerySchema,
  videoUploadOptionsSchema,
} from '../../contract/http.ts';
import type { VideoConfig } from '../config.ts';
import { type Caller, callerOf, limitKey } from '../security/caller.ts';
import { checkVideoCaps } from './caps.ts';
import { withoutPaths } from './ffmpeg-messages.ts';
import type { JobStore } from './job-store.ts';
import type { VideoProbe } from './probe.ts';
import type { VideoJob } from './store.ts';
import type { VideoQueue } from './video-queue.ts';
import { buildTimeline, timelineSummaryToCsv, timelineToCsv } from './timeline.ts';
import { timelineFileName } from '../../contract/file-names.ts';
import { UploadSlots } from './upload-slots.ts';

/** What the routes need from the video service. */
export interface VideoRoutesDeps {
  config: Pick<
    VideoConfig,
    'maxUploadBytes' | 'sampleFps' | 'maxDurationSec' | 'maxFramesPerJob' | 'maxConcurrentUploadsPerClient' | 'maxQueuedJobsPerClient'
  >;
  /** Where multer writes uploads while they arrive (VIDEO_UPLOAD_DIR). */
  uploadsDir: string;
  /** ffprobe (and a decode check) of an uploaded file; `accept` may refuse it from its duration first; rejects with an AppError. */
  probe(file: string, accept?: (durationSec: number) => void): Promise<VideoProbe>;
  /** These two throw not_ready while the service is not started. */
  store(): JobStore;
  queue(): VideoQueue;
  /** Stops the job if it runs, deletes its upload and rows; false if there is no such job. */
  removeJob(id: string): Promise<boolean>;
  logger: Logger;
}

/** The public view of a job (no server paths). */
export function jobView(job: VideoJob): VideoJobView {
  return {
    id: job.id,
    status: job.status,
    progress: job.progress,
    durationSec: job.durationSec,
    sampledFps: job.sampledFps,
    framesAnalyzed: job.framesAnalyzed,
    source: { name: job.originalName, width: job.width, height: job.height, sizeBytes: job.sizeBytes },
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    ...(job.error ? { error: job.error } : {}),
  };
}

function multerError(error: unknown, maxBytes: number): AppError {
  if (error instanceof multer.MulterError) {
    if (error.code === 'LIMIT_FILE_SIZE') {
      return new AppError('payload_too_large', `the video is larger than the upload limit (${Math.round(maxBytes / 1024 / 1024)} MB)`);
    }
    if (error.code === 'LIMIT_UNEXPECTED_FILE') {
      return new AppError('bad_request', `unexpected file field "${error.field ?? ''}"; send the video in the multipart field "video"`);
    }
    return new AppError('bad_request', `the upload could not be read (${error.code})`);
  }
  if (error instanceof AppError) return error;
  return new AppError('bad_request', 'the upload could not be read');
}

/** Upload file names: the service's orphan sweep deletes only files with this form. */
export const UPLOAD_FILE_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.upload$/;

function jobIdParam(req: Request): string {
  const parsed = videoJobIdSchema.safeParse(req.params.id);
  if (!parsed.success) throw new AppError('not_found', 'no such video job');
  return parsed.data;
}

/** The job if it exists and belongs to the caller; another owner's job is as missing as an unknown one. */
async function ownJob(store: JobStore, id: string, caller: Caller): Promise<VideoJob> {
  const job = await store.get(id);
  if (!job || job.owner !== caller.owner) throw new AppError('not_found', 'no such video job');
  return job;
}

/** 429 when the client already has its maximum of jobs queued or running. */
async function checkQueuedJobs(store: JobStore, key: string, max: number): Promise<void> {
  if ((await store.activeCount(key)) >= max) {
    throw new AppError(
      'rate_limited',
      `you already have ${max} video job(s) queued or running (VIDEO_MAX_QUEUED_JOBS_PER_CLIENT); wait for one to finish or delete one`,
    );
  }
}

export function videoRouter(deps: VideoRoutesDeps): Router {
  const { logger } = deps;
  const router = express.Router();
  const upload = multer({
    storage: multer.diskStorage({
      destination: (_req, _file, cb) => {
        fs.mkdir(deps.uploadsDir, { recursive: true }, (error) => cb(error ?? null, deps.uploadsDir));
      },
      filename: (_req, _file, cb) => cb(null, `${randomUUID()}.upload`),
    }),
    limits: { fileSize: deps.config.maxUploadBytes, files: 1, fields: 8 },
  }).single('video');
  const slots = new UploadSlots(deps.config.maxConcurrentUploadsPerClient);

  const receiveUpload = (req: Request, res: Response, next: NextFunction): void => {
    if (!req.is('multipart/form-data')) {
      next(new AppError('unsupported_media_type', 'send the video as multipart/form-data in the field "video"'));
      return;
    }
    const key = limitKey(callerOf(res));
    // Everything here is refused before a byte of the body is read.
    const release = slots.acquire(key);
    if (!release) {
      next(
        new AppError(
          'rate_limited',
          `you are already sending ${deps.config.maxConcurrentUploadsPerClient} upload(s) at once (MAX_CONCURRENT_UPLOADS_PER_CLIENT); wait for one to finish`,
        ),
      );
      return;
    }
    // Every path gives the slot back: the body stored or refused below, or the connection gone.
    res.on('close', release);
    (async () => {
      await checkQueuedJobs(deps.store(), key, deps.config.maxQueuedJobsPerClient);
      if (!(await deps.queue().hasRoom())) throw new AppError('queue_full', 'too many videos are waiting; try again later');
    })().then(
      () => {
        upload(req, res, (error: unknown) => {
          release();
          next(error ? multerError(error, deps.config.maxUploadBytes) : undefined);
        });
      },
      (error: unknown) => {
        release();
        next(error);
      },
    );
  };

  router.get('/', async (req, res) => {
    const query = videoListQuerySchema.safeParse(req.query);
    if (!query.success) throw new AppError('bad_request', 'limit must be a whole number from 1 to 100');
    const answer: VideoJobList = { jobs: (await deps.store().ofOwner(callerOf(res).owner, query.data.limit)).map(jobView) };
    res.json(answer);
  });

  router.post('/', receiveUpload, async (req, res) => {
    const file = req.file;
    if (!file) throw new AppError('bad_request', 'no file in the multipart field "video"');
    let accepted = false;
    try {
      const options = videoUploadOptionsSchema.safeParse({ ...req.query, ...(req.body as object | undefined) });
      // The schema's own sentence (e.g. the fps range), not the validator's report.
      if (!options.success) throw new AppError('bad_request', options.error.issues[0]?.message ?? 'invalid upload options');
      const caller = callerOf(res);
      const sampledFps = options.data.fps ?? deps.config.sampleFps;
      const probe = await deps.probe(file.path, (durationSec) => checkVideoCaps(durationSec, sampledFps, deps.config));
      const queue = deps.queue();
      const store = deps.store();
      // Again after the probe: other uploads of this client may have become jobs meanwhile.
      await checkQueuedJobs(store, limitKey(caller), deps.config.maxQueuedJobsPerClient);
      if (!(await queue.hasRoom())) throw new AppError('queue_full', 'too many videos are waiting; try again later');
      const job = await store.create({
        id: randomUUID(),
        owner: caller.owner,
        clientKey: limitKey(caller),
        originalName: path.basename(file.originalname || 'video').slice(0, 255),
        uploadPath: path.resolve(file.path),
        sizeBytes: file.size,
        durationSec: probe.durationSec,
        sampledFps,
        width: probe.width,
        height: probe.height,
        keepThumbnails: options.data.thumbnails ?? false,
      });
      try {
        await queue.enqueue(job.id);
      } catch (error) {
        await store.delete(job.id);
        throw error;
      }
      accepted = true;
      logger.info({ jobId: job.id, sizeBytes: file.size, durationSec: probe.durationSec, codec: probe.codec }, 'video accepted');
      const answer: VideoAccepted = { id: job.id, status: job.status };
      res.status(202).location(`${req.baseUrl}/${job.id}`).json(answer);
    } finally {
      if (!accepted) fs.rmSync(file.path, { force: true });
    }
  });

  router.get('/:id', async (req, res) => {
    res.json(jobView(await ownJob(deps.store(), jobIdParam(req), callerOf(res))));
  });

  router.get('/:id/timeline', async (req, res) => {
    const id = jobIdParam(req);
    const query = timelineQuerySchema.safeParse(req.query);
    if (!query.success) throw new AppError('bad_request', 'format must be "json" or "csv"');
    const store = deps.store();
    const job = await ownJob(store, id, callerOf(res));
    const [samples, tracks] = await Promise.all([store.samples(id), store.thumbnailTracks(id)]);
    const timeline = buildTimeline(job, samples, { tracks, url: (trackId) => `${req.baseUrl}/${id}/tracks/${trackId}/thumbnail` });
    if (query.data.format !== 'json') {
      const summary = query.data.format === 'summary-csv';
      res
        .type('text/csv; charset=utf-8')
        .set('Content-Disposition', `attachment; filename="${timelineFileName(job.originalName, 'csv').replace(/\.csv$/, summary ? '.summary.csv' : '.csv')}"`)
        .send(summary ? timelineSummaryToCsv(timeline) : timelineToCsv(timeline));
      return;
    }
    res.json(timeline);
  });

  router.get('/:id/tracks/:trackId/thumbnail', async (req, res) => {
    const store = deps.store();
    const job = await ownJob(store, jobIdParam(req), callerOf(res));
    const trackId = Number(req.params.trackId);
    const jpeg = Number.isInteger(trackId) && trackId >= 0 ? await store.thumbnail(job.id, trackId) : undefined;
    if (!jpeg) throw new AppError('not_found', 'no thumbnail for this track (the upload did not ask for thumbnails, or no such track)');
    res.type('image/jpeg').set('Cache-Control', 'private, max-age=3600').send(jpeg);
  });

  router.delete('/:id', async (req, res) => {
    const job = await ownJob(deps.store(), jobIdParam(req), callerOf(res));
    const removed = await deps.removeJob(job.id);
    if (!removed) throw new AppError('not_found', 'no such video job');
    res.status(204).end();
  });

  // The last guard: no refusal of these routes carries a server path (ffmpeg, fs or multer text).
  const stripPaths: ErrorRequestHandler = (error, _req, _res, next) => {
    next(error instanceof AppError ? new AppError(error.code, withoutPaths(error.message)) : error);
  };
  router.use(stripPaths);

  return router;
}
