import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AppError } from '../../contract/errors.ts';
import { probeVideo } from './probe.ts';
import type { VideoServiceContext } from './service.ts';
import type { VideoJob } from './store.ts';
import { buildTimeline, timelineToCsv } from './timeline.ts';

const idSchema = z.uuid();
const uploadOptionsSchema = z.object({
  fps: z.coerce.number().min(0.1).max(30).optional(),
});
const timelineQuerySchema = z.object({
  format: z.enum(['json', 'csv']).default('json'),
});

/** The public view of a job (no server paths). */
export function jobView(job: VideoJob) {
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
  const parsed = idSchema.safeParse(req.params.id);
  if (!parsed.success) throw new AppError('not_found', 'no such video job');
  return parsed.data;
}

/** Routes under /api/v1/videos; errors go to the app's error handler as AppErrors. */
export function videoRouter(ctx: VideoServiceContext, logger: Logger): Router {
  const router = express.Router();
  const upload = multer({
    storage: multer.diskStorage({
      destination: (_req, _file, cb) => {
        fs.mkdir(ctx.uploadsDir, { recursive: true }, (error) => cb(error ?? null, ctx.uploadsDir));
      },
      filename: (_req, _file, cb) => cb(null, `${randomUUID()}.upload`),
    }),
    limits: { fileSize: ctx.config.maxUploadBytes, files: 1, fields: 8 },
  }).single('video');

  const receiveUpload = (req: Request, res: Response, next: NextFunction): void => {
    if (!req.is('multipart/form-data')) {
      next(new AppError('unsupported_media_type', 'send the video as multipart/form-data in the field "video"'));
      return;
    }
    // Refuse before reading a large body when nothing could run it.
    try {
      if (!ctx.queue().hasRoom()) throw new AppError('queue_full', 'too many videos are waiting; try again later');
    } catch (error) {
      next(error);
      return;
    }
    upload(req, res, (error: unknown) => next(error ? multerError(error, ctx.config.maxUploadBytes) : undefined));
  };

  router.post('/', receiveUpload, async (req, res) => {
    const file = req.file;
    if (!file) throw new AppError('bad_request', 'no file in the multipart field "video"');
    let accepted = false;
    try {
      const options = uploadOptionsSchema.safeParse({ ...req.query, ...(req.body as object | undefined) });
      if (!options.success) throw new AppError('bad_request', `invalid options: ${z.prettifyError(options.error)}`);
      const probe = await probeVideo(file.path, ctx.binaries);
      const queue = ctx.queue();
      if (!queue.hasRoom()) throw new AppError('queue_full', 'too many videos are waiting; try again later');
      const job = ctx.store().create({
        id: randomUUID(),
        originalName: path.basename(file.originalname || 'video').slice(0, 255),
        uploadPath: path.resolve(file.path),
        sizeBytes: file.size,
        durationSec: probe.durationSec,
        sampledFps: options.data.fps ?? ctx.config.sampleFps,
        width: probe.width,
        height: probe.height,
      });
      queue.enqueue(job.id);
      accepted = true;
      logger.info({ jobId: job.id, sizeBytes: file.size, durationSec: probe.durationSec, codec: probe.codec }, 'video accepted');
      res.status(202).location(`${req.baseUrl}/${job.id}`).json({ id: job.id, status: job.status });
    } finally {
      if (!accepted) fs.rmSync(file.path, { force: true });
    }
  });

  router.get('/:id', (req, res) => {
    const job = ctx.store().get(jobIdParam(req));
    if (!job) throw new AppError('not_found', 'no such video job');
    res.json(jobView(job));
  });

  router.get('/:id/timeline', (req, res) => {
    const id = jobIdParam(req);
    const query = timelineQuerySchema.safeParse(req.query);
    if (!query.success) throw new AppError('bad_request', 'format must be "json" or "csv"');
    const store = ctx.store();
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
    const removed = await ctx.removeJob(jobIdParam(req));
    if (!removed) throw new AppError('not_found', 'no such video job');
    res.status(204).end();
  });

  return router;
}
