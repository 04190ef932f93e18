/**
 * The video service: uploads become jobs in a SQLite store, a bounded queue runs them through
 * ffmpeg, the shared analyzer (lowest priority) and a face tracker, and progress is emitted as
 * events (the server forwards them over socket.io as `video:progress`). It builds the routes'
 * dependencies; the routes do not import this module.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Router } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import type { VideoAnalysisSettings } from '../../contract/http.ts';
import type { VideoProgressEvent } from '../../contract/socket.ts';
import type { Config } from '../config.ts';
import { queueDepth, runningVideoJobs, videoJobsTotal } from '../metrics/metrics.ts';
import type { FrameAnalyzer, RgbFrame } from '../pipeline/types.ts';
import { analyzeVideoFile } from './analyze-file.ts';
import { type FfmpegBinaries, resolveFfmpegBinaries } from './binaries.ts';
import { withoutPaths } from './ffmpeg-messages.ts';
import { JobQueue, JobStoppedError } from './jobs.ts';
import { deleteExpiredJobs, retentionSweepMs, sweepOrphanUploads } from './maintenance.ts';
import { probeVideo } from './probe.ts';
import { UPLOAD_FILE_PATTERN, videoRouter, type VideoRoutesDeps } from './routes.ts';
import { type VideoJob, VideoJobStore, type VideoSample } from './store.ts';
import { cropFace, encodeThumbnail } from './thumbnails.ts';

export interface VideoServiceEvents {
  progress: [VideoProgressEvent];
}

export interface VideoService {
  /** Everything under /api/v1/videos. */
  router: Router;
  events: EventEmitter<VideoServiceEvents>;
  /** Whether `owner` may see job `jobId` (it exists and is theirs); false while the service is not started. */
  canRead(jobId: string, owner: string): boolean;
  /**
   * Opens the store; deletes orphan uploads and expired jobs; resumes interrupted jobs whose upload
   * is still there and that have attempts left, fails the others; starts the retention timer.
   */
  start(): Promise<void>;
  /** Stops ffmpeg children and running jobs (they resume on the next start), the retention timer, closes the db. */
  close(): Promise<void>;
}

/** The slices of the Config the video service reads. */
export type VideoServiceConfig = Pick<Config, 'video' | 'ffmpeg' | 'tracking'>;

export interface VideoServiceDeps {
  /** The shared analyzer, or a getter for one that appears once models are loaded. */
  analyzer: FrameAnalyzer | (() => FrameAnalyzer | undefined);
  config: VideoServiceConfig;
  logger: Logger;
  /** Which ffmpeg/ffprobe to run (default: resolved from `config.ffmpeg`). */
  binaries?: FfmpegBinaries;
  /** The model and settings a job starting now is analysed with (recorded in its results). */
  describeAnalysis: () => VideoAnalysisSettings;
}

/**
 * The best-scored face of each track of one job, kept as its thumbnail: a face is cropped and
 * encoded only when it beats the track's best so far, and encodes run one after another.
 */
class TrackThumbnails {
  readonly #best = new Map<number, number>();
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: VideoJobStore,
    private readonly jobId: string,
    private readonly logger: Logger,
  ) {}

  offer(sample: VideoSample, picture: { frame: RgbFrame; scale: { x: number; y: number } }): void {
    for (const face of sample.faces) {
      if (face.score <= (this.#best.get(face.trackId) ?? -1)) continue;
      const { x, y } = picture.scale;
      const crop = cropFace(picture.frame, { x: face.box.x / x, y: face.box.y / y, width: face.box.width / x, height: face.box.height / y });
      if (!crop) continue;
      this.#best.set(face.trackId, face.score);
      const { trackId, score } = face;
      this.#chain = this.#chain
        .then(async () => this.store.putThumbnail(this.jobId, trackId, score, await encodeThumbnail(crop)))
        .catch((error: unknown) => this.logger.warn({ err: error, jobId: this.jobId, trackId }, 'face thumbnail not stored'));
    }
  }

  /** Resolves when every thumbnail offered so far is stored (or failed and was logged). */
  settled(): Promise<void> {
    return this.#chain;
  }
}

/** Progress is pushed at most this often per job (plus every status change). */
const PROGRESS_EVENT_MS = 250;

export function createVideoService(deps: VideoServiceDeps): VideoService {
  const config = deps.config.video;
  const tracking = deps.config.tracking;
  const logger = deps.logger.child({ component: 'video' });
  const binaries = deps.binaries ?? resolveFfmpegBinaries(deps.config.ffmpeg);
  const videoDir = path.join(config.dataDir, 'video');
  const uploadsDir = config.uploadDir;
  const events = new EventEmitter<VideoServiceEvents>();
  let store: VideoJobStore | undefined;
  let queue: JobQueue | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;

  const analyzer = (): FrameAnalyzer => {
    const current = typeof deps.analyzer === 'function' ? deps.analyzer() : deps.analyzer;
    if (!current) throw new AppError('not_ready', 'the analyzer is not ready yet');
    return current;
  };

  const emit = (job: VideoJob): void => {
    events.emit('progress', {
      id: job.id,
      status: job.status,
      progress: job.progress,
      durationSec: job.durationSec,
      sampledFps: job.sampledFps,
      ...(job.error ? { error: job.error } : {}),
    });
  };

  const deleteUpload = (job: VideoJob): void => {
    if (!job.uploadPath) return;
    fs.rmSync(job.uploadPath, { force: true });
    store?.markUploadDeleted(job.id);
  };

  /** A job started `maxAttempts` times is not started again (a video that crashes the server would otherwise loop). */
  const failOutOfAttempts = (db: VideoJobStore, job: VideoJob): void => {
    db.markFailed(job.id, `interrupted ${job.attempts} times (crash or restart mid-job); not run again`);
    videoJobsTotal.inc({ outcome: 'failed' });
    logger.warn({ jobId: job.id, attempts: job.attempts, maxAttempts: config.maxAttempts }, 'video job out of attempts');
    if (!config.keepUploads) deleteUpload(job);
    emit(db.get(job.id)!);
  };

  const runJob = async (id: string, signal: AbortSignal): Promise<void> => {
    const db = store!;
    const job = db.get(id);
    if (!job) return;
    if (!job.uploadPath || !fs.existsSync(job.uploadPath)) {
      db.markFailed(id, 'the uploaded file is no longer available');
      videoJobsTotal.inc({ outcome: 'failed' });
      emit(db.get(id)!);
      return;
    }
    if (job.attempts >= config.maxAttempts) {
      failOutOfAttempts(db, job);
      return;
    }
    db.markRunning(id, deps.describeAnalysis());
    emit(db.get(id)!);
    runningVideoJobs.inc();
    const started = performance.now();
    let lastEmit = 0;
    const thumbnails = job.keepThumbnails ? new TrackThumbnails(db, id, logger) : undefined;
    try {
      const samples = await analyzeVideoFile({
        file: job.uploadPath,
        probe: job,
        analyzer: analyzer(),
        binaries,
        fps: job.sampledFps,
        maxSidePx: config.maxSidePx,
        maxInFlightFrames: config.maxInFlightFrames,
        tracker: tracking,
        sceneCutThreshold: tracking.sceneCutThreshold,
        signal,
        onSample: (sample, progress, picture) => {
          db.addSample(id, sample, progress);
          thumbnails?.offer(sample, picture);
          const now = performance.now();
          if (now - lastEmit >= PROGRESS_EVENT_MS) {
            lastEmit = now;
            events.emit('progress', { id, status: 'running', progress, durationSec: job.durationSec, sampledFps: job.sampledFps });
          }
        },
      });
      if (samples === 0) throw new AppError('undecodable_video', 'no frame could be decoded from the video');
      await thumbnails?.settled();
      db.markDone(id);
      videoJobsTotal.inc({ outcome: 'done' });
      const wallSec = (performance.now() - started) / 1000;
      logger.info({ jobId: id, samples, durationSec: job.durationSec, wallSec, realTimeFactor: job.durationSec / wallSec }, 'video analysed');
      emit(db.get(id)!);
      if (!config.keepUploads) deleteUpload(job);
    } catch (error) {
      const stop = signal.aborted && signal.reason instanceof JobStoppedError ? signal.reason.reason : undefined;
      if (stop === 'shutdown') {
        // Left as 'running' on purpose: the next start() resumes it.
        logger.info({ jobId: id }, 'video job interrupted by shutdown');
        return;
      }
      if (stop === 'deleted') return; // the DELETE handler removes everything
      // Clients read `error`: no server path in it, whatever produced the message.
      const reason = error instanceof AppError ? withoutPaths(error.message) : 'internal error during analysis';
      if (!(error instanceof AppError)) logger.error({ err: error, jobId: id }, 'video job failed');
      else logger.warn({ jobId: id, code: error.code, reason }, 'video job failed');
      db.markFailed(id, reason);
      videoJobsTotal.inc({ outcome: 'failed' });
      emit(db.get(id)!);
      if (!config.keepUploads) deleteUpload(job);
    } finally {
      runningVideoJobs.dec();
    }
  };

  const routes: VideoRoutesDeps = {
    config,
    uploadsDir,
    logger,
    probe: (file, accept) => probeVideo(file, binaries, accept),
    store: () => {
      if (!store) throw new AppError('not_ready', 'the video service is not started');
      return store;
    },
    queue: () => {
      if (!queue) throw new AppError('not_ready', 'the video service is not started');
      return queue;
    },
    async removeJob(id) {
      const db = routes.store();
      const job = db.get(id);
      if (!job) return false;
      await routes.queue().cancel(id, 'deleted');
      if (job.uploadPath) fs.rmSync(job.uploadPath, { force: true });
      db.delete(id);
      videoJobsTotal.inc({ outcome: 'deleted' });
      return true;
    },
  };

  return {
    router: videoRouter(routes),
    events,
    canRead(jobId, owner) {
      const job = store?.get(jobId);
      return job !== undefined && job.owner === owner;
    },
    async start() {
      if (store) return;
      fs.mkdirSync(uploadsDir, { recursive: true });
      store = new VideoJobStore(path.join(videoDir, 'jobs.sqlite'));
      sweepOrphanUploads(uploadsDir, UPLOAD_FILE_PATTERN, store, logger);
      deleteExpiredJobs(store, config.retentionMs, logger);
      queue = new JobQueue({
        concurrency: config.jobConcurrency,
        maxQueued: config.maxQueuedJobs,
        run: runJob,
        onDepth: (queued) => queueDepth.set({ queue: 'video_jobs' }, queued),
      });
      logger.info({ binaries: binaries.origin, dataDir: config.dataDir, uploadDir: uploadsDir }, 'video service starting');
      // Jobs a previous process accepted but did not finish: resume from the start, or fail with the reason.
      const interrupted = [...store.withStatus('running'), ...store.withStatus('queued')];
      for (const job of interrupted) {
        if (job.attempts >= config.maxAttempts) {
          failOutOfAttempts(store, job);
          continue;
        }
        if (job.uploadPath && fs.existsSync(job.uploadPath)) {
          store.markQueued(job.id);
          queue.enqueue(job.id, { force: true });
          logger.info({ jobId: job.id, previousStatus: job.status }, 'resuming interrupted video job');
        } else {
          store.markFailed(job.id, 'interrupted by a server restart, and its uploaded file is no longer available');
          videoJobsTotal.inc({ outcome: 'failed' });
          logger.warn({ jobId: job.id }, 'interrupted video job cannot resume: upload missing');
        }
        emit(store.get(job.id)!);
      }
      if (config.retentionMs > 0) {
        retentionTimer = setInterval(() => {
          if (store) deleteExpiredJobs(store, config.retentionMs, logger);
        }, retentionSweepMs(config.retentionMs));
        retentionTimer.unref();
      }
    },
    async close() {
      clearInterval(retentionTimer);
      retentionTimer = undefined;
      await queue?.close();
      queue = undefined;
      store?.close();
      store = undefined;
    },
  };
}
