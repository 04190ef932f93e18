/**
 * The video API under /api/v1/videos: upload (multipart, probed before it is queued), job status,
 * timeline as JSON or CSV, delete. Requests are validated with the schemas of contract/http.ts and
 * answers are typed by its types. The routes depend only on `VideoRoutesDeps`, which the video
 * service builds; errors go to the app's error handler as AppErrors.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import {
  timelineQuerySchema,
  type VideoAccepted,
  videoJobIdSchema,
  type VideoJobView,
  videoUploadOptionsSchema,
} from '../../contract/http.ts';
import type { VideoConfig } from '../config.ts';
import type { JobQueue } from './jobs.ts';
import type { VideoProbe } from './probe.ts';
import type { VideoJob, VideoJobStore } from './store.ts';
import { buildTimeline, timelineToCsv } from './timeline.ts';

/** What the routes need from the video service. */
export interface VideoRoutesDeps {
  config: Pick<VideoConfig, 'maxUploadBytes' | 'sampleFps'>;
  /** Where multer writes uploads while they arrive. */
  uploadsDir: string;
  /** ffprobe (and a decode check) of an uploaded file; rejects with an AppError. */
  probe(file: string): Promise<VideoProbe>;
  /** These two throw not_ready while the service is not started. */
  store(): VideoJobStore;
  queue(): JobQueue;
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

function jobIdParam(req: Request): string {
  const parsed = videoJobIdSchema.safeParse(req.params.id);
  if (!parsed.success) throw new AppError('not_found', 'no such video job');
  return parsed.data;
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

  const receiveUpload = (req: Request, res: Response, next: NextFunction): void => {
    if (!req.is('multipart/form-data')) {
      next(new AppError('unsupported_media_type', 'send the video as multipart/form-data in the field "video"'));
      return;
    }
    // Refuse before reading a large body when nothing could run it.
    try {
      if (!deps.queue().hasRoom()) throw new AppError('queue_full', 'too many videos are waiting; try again later');
    } catch (error) {
      next(error);
      return;
    }
    upload(req, res, (error: unknown) => next(error ? multerError(error, deps.config.maxUploadBytes) : undefined));
  };

  router.post('/', receiveUpload, async (req, res) => {
    const file = req.file;
    if (!file) throw new AppError('bad_request', 'no file in the multipart field "video"');
    let accepted = false;
    try {
      const options = videoUploadOptionsSchema.safeParse({ ...req.query, ...(req.body as object | undefined) });
      // The schema's own sentence (e.g. the fps range), not the validator's report.
      if (!options.success) throw new AppError('bad_request', options.error.issues[0]?.message ?? 'invalid upload options');
      const probe = await deps.probe(file.path);
      const queue = deps.queue();
      if (!queue.hasRoom()) throw new AppError('queue_full', 'too many videos are waiting; try again later');
      const job = deps.store().create({
        id: randomUUID(),
        originalName: path.basename(file.originalname || 'video').slice(0, 255),
        uploadPath: path.resolve(file.path),
        sizeBytes: file.size,
        durationSec: probe.durationSec,
        sampledFps: options.data.fps ?? deps.config.sampleFps,
        width: probe.width,
        height: probe.height,
      });
      queue.enqueue(job.id);
      accepted = true;
      logger.info({ jobId: job.id, sizeBytes: file.size, durationSec: probe.durationSec, codec: probe.codec }, 'video accepted');
      const answer: VideoAccepted = { id: job.id, status: job.status };
      res.status(202).location(`${req.baseUrl}/${job.id}`).json(answer);
    } finally {
      if (!accepted) fs.rmSync(file.path, { force: true });
    }
  });

  router.get('/:id', (req, res) => {
    const job = deps.store().get(jobIdParam(req));
    if (!job) throw new AppError('not_found', 'no such video job');
    res.json(jobView(job));
  });

  router.get('/:id/timeline', (req, res) => {
    const id = jobIdParam(req);
    const query = timelineQuerySchema.safeParse(req.query);
    if (!query.success) throw new AppError('bad_request', 'format must be "json" or "csv"');
    const store = deps.store();
    const job = store.get(id);
    if (!job) throw new AppError('not_found', 'no such video job');
    const timeline = buildTimeline(job, store.samples(id));
    if (query.data.format === 'csv') {
      res
        .type('text/csv; charset=utf-8')
        .set('Content-Disposition', `attachment; filename="timeline-${id}.csv"`)
        .send(timelineToCsv(timeline));
      return;
    }
    res.json(timeline);
  });

  router.delete('/:id', async (req, res) => {
    const removed = await deps.removeJob(jobIdParam(req));
    if (!removed) throw new AppError('not_found', 'no such video job');
    res.status(204).end();
  });

  return router;
}
