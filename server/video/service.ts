/**
 * The video service: uploads become jobs in a store (SQLite on one node; Redis with REDIS_URL,
 * see job-store.ts), a bounded queue (in-process; BullMQ with REDIS_URL) runs them through
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
import { queueDepth, runningVideoJobs, setVideoQueueSource, videoJobsTotal } from '../metrics/metrics.ts';
import type { FrameAnalyzer, RgbFrame } from '../pipeline/types.ts';
import { analyzeVideoFile } from './analyze-file.ts';
import { type FfmpegBinaries, resolveFfmpegBinaries } from './binaries.ts';
import { withoutPaths } from './ffmpeg-messages.ts';
import type { Redis } from 'ioredis';
import { BullVideoQueue, type QueueCounts } from './bullmq-queue.ts';
import { type JobStore, SqliteJobStore } from './job-store.ts';
import { JobQueue, JobStoppedError } from './jobs.ts';
import { deleteExpiredJobs, retentionSweepMs, sweepOrphanUploads } from './maintenance.ts';
import { probeVideo } from './probe.ts';
import { UPLOAD_FILE_PATTERN, videoRouter, type VideoRoutesDeps } from './routes.ts';
import { RedisJobStore, RedisUnreachableError } from './redis-job-store.ts';
import { type VideoJob, VideoJobStore, type VideoSample } from './store.ts';
import { LocalVideoQueue, type VideoQueue } from './video-queue.ts';
import { cropFace, encodeThumbnail } from './thumbnails.ts';

export interface VideoServiceEvents {
  progress: [VideoProgressEvent];
}

export interface VideoService {
  /** Everything under /api/v1/videos. */
  router: Router;
  events: EventEmitter<VideoServiceEvents>;
  /** Whether `owner` may see job `jobId` (it exists and is theirs); false while the service is not started. */
  canRead(jobId: string, owner: string): boolean | Promise<boolean>;
  /** With REDIS_URL: BullMQ's cluster-wide counts; undefined on one node or before start. */
  queueCounts(): Promise<QueueCounts | undefined>;
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
  /**
   * REDIS_URL: jobs in Redis (on `redis`), the queue on BullMQ; `runJobs` false for NODE_ROLE=api;
   * `isUp`: whether the node reaches Redis now (while it does not, video calls answer not_ready).
   */
  cluster?: { redis: Redis; redisUrl: string; nodeId: string; runJobs: boolean; lockMs: number; isUp: () => boolean };
}

/** With REDIS_URL the upload folder is shared: an unreferenced upload younger than this may be another node's, still arriving. */
export const SHARED_ORPHAN_MIN_AGE_MS = 60 * 60 * 1000;

/**
 * With REDIS_URL, a node that runs jobs looks for queued records BullMQ has no job for (the node
 * that accepted the upload died between writing the record and adding the job) when it starts
 * and then every VIDEO_JOB_LOCK_SEC, and adds them again. Only records queued for longer than
 * this grace (VIDEO_JOB_LOCK_SEC too, at least 1 s) are looked at, so an upload still between
 * its two writes is left alone; adding one twice would be harmless anyway (BullMQ's job id is
 * the record's id).
 */
export function reconcileEveryMs(lockMs: number): number {
  return Math.max(1000, lockMs);
}

/**
 * The best-scored face of each track of one job, kept as its thumbnail: a face is cropped and
 * encoded only when it beats the track's best so far, and encodes run one after another.
 */
class TrackThumbnails {
  readonly #best = new Map<number, number>();
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: JobStore,
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
  let store: JobStore | undefined;
  let queue: VideoQueue | undefined;
  let bull: BullVideoQueue | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;

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

  const emitNow = async (db: JobStore, id: string): Promise<void> => {
    const job = await db.get(id);
    if (job) emit(job);
  };

  const deleteUpload = async (job: VideoJob): Promise<void> => {
    if (!job.uploadPath) return;
    fs.rmSync(job.uploadPath, { force: true });
    await store?.markUploadDeleted(job.id);
  };

  /** A job started `maxAttempts` times is not started again (a video that crashes the server would otherwise loop). */
  const failOutOfAttempts = async (db: JobStore, job: VideoJob, why = 'crash or restart mid-job'): Promise<void> => {
    await db.markFailed(job.id, `interrupted ${job.attempts} times (${why}); not run again`);
    videoJobsTotal.inc({ outcome: 'failed' });
    logger.warn({ jobId: job.id, attempts: job.attempts, maxAttempts: config.maxAttempts }, 'video job out of attempts');
    if (!config.keepUploads) await deleteUpload(job);
    await emitNow(db, job.id);
  };

  const runJob = async (id: string, outerSignal: AbortSignal): Promise<void> => {
    const db = store!;
    const job = await db.get(id);
    if (!job) return;
    // Already finished: its node died after the record said so but before BullMQ heard, or a
    // reconcile re-added it as it finished. Not run again.
    if (job.status === 'done' || job.status === 'failed') return;
    if (!job.uploadPath || !fs.existsSync(job.uploadPath)) {
      await db.markFailed(id, 'the uploaded file is no longer available');
      videoJobsTotal.inc({ outcome: 'failed' });
      await emitNow(db, id);
      return;
    }
    if (job.attempts >= config.maxAttempts) {
      await failOutOfAttempts(db, job, deps.cluster ? 'a node died or stopped mid-job' : undefined);
      return;
    }
    const attempt = await db.markRunning(id, deps.describeAnalysis());
    if (attempt === undefined) return; // deleted meanwhile
    await emitNow(db, id);
    // Aborted by the queue (DELETE here, shutdown), or when a sample write finds the job gone
    // (deleted from another node) or restarted by another runner.
    const controller = new AbortController();
    const signal = controller.signal;
    if (outerSignal.aborted) controller.abort(outerSignal.reason);
    else outerSignal.addEventListener('abort', () => controller.abort(outerSignal.reason), { once: true });
    let writes: Promise<unknown> = Promise.resolve();
    let writeError: unknown;
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
          // Sent now (SQLite writes it inside the call; Redis keeps the order of commands), awaited before the job ends.
          const written = db.addSample(id, sample, progress, deps.cluster ? attempt : undefined).then(
            (kept) => {
              if (!kept && !signal.aborted) controller.abort(new JobStoppedError('deleted'));
            },
            (error: unknown) => {
              writeError ??= error;
              if (!signal.aborted) controller.abort(error);
            },
          );
          writes = Promise.all([writes, written]);
          thumbnails?.offer(sample, picture);
          const now = performance.now();
          if (now - lastEmit >= PROGRESS_EVENT_MS) {
            lastEmit = now;
            events.emit('progress', { id, status: 'running', progress, durationSec: job.durationSec, sampledFps: job.sampledFps });
          }
        },
      });
      await writes;
      if (writeError) throw writeError;
      if (signal.aborted) throw signal.reason;
      if (samples === 0) throw new AppError('undecodable_video', 'no frame could be decoded from the video');
      await thumbnails?.settled();
      await db.markDone(id);
      videoJobsTotal.inc({ outcome: 'done' });
      const wallSec = (performance.now() - started) / 1000;
      logger.info({ jobId: id, samples, durationSec: job.durationSec, wallSec, realTimeFactor: job.durationSec / wallSec }, 'video analysed');
      await emitNow(db, id);
      if (!config.keepUploads) await deleteUpload(job);
    } catch (error) {
      await writes;
      const stop = signal.aborted && signal.reason instanceof JobStoppedError ? signal.reason.reason : undefined;
      if (stop === 'shutdown') {
        // Left as 'running' on purpose: the next start() resumes it.
        logger.info({ jobId: id }, 'video job interrupted by shutdown');
        return;
      }
      if (stop === 'deleted') {
        // The DELETE handler removes everything (on another node: its record is already gone).
        if (!outerSignal.aborted) logger.info({ jobId: id }, 'video job deleted or taken over elsewhere: stopped here');
        return;
      }
      const lostRedis = [writeError, error].find((e) => e instanceof RedisUnreachableError);
      if (lostRedis) {
        // Not the video's fault: no failed record (it could not be written anyway). BullMQ runs
        // the job again from the start once Redis answers; the samples written so far are cleared then.
        logger.warn({ jobId: id, reason: (lostRedis as Error).message }, 'video job stopped: Redis cannot be reached; it runs again when Redis is back');
        throw lostRedis;
      }
      // Clients read `error`: no server path in it, whatever produced the message.
      const reason = error instanceof AppError ? withoutPaths(error.message) : 'internal error during analysis';
      if (!(error instanceof AppError)) logger.error({ err: error, jobId: id }, 'video job failed');
      else logger.warn({ jobId: id, code: error.code, reason }, 'video job failed');
      await db.markFailed(id, reason);
      videoJobsTotal.inc({ outcome: 'failed' });
      await emitNow(db, id);
      if (!config.keepUploads) await deleteUpload(job);
    } finally {
      runningVideoJobs.dec();
    }
  };

  /**
   * Adds again the queued records BullMQ has no job for (see reconcileEveryMs): `everyRecord`
   * scans every record (at start, also finding records older than the `queued` index), else one
   * read of the index. Returns the ids added.
   */
  const reconcile = async (db: RedisJobStore, queue: BullVideoQueue, graceMs: number, everyRecord: boolean): Promise<string[]> => {
    const cutoff = new Date(Date.now() - graceMs);
    const candidates = everyRecord
      ? (await db.withStatus('queued')).filter((job) => Date.parse(job.createdAt) < cutoff.getTime()).map((job) => job.id)
      : await db.queuedBefore(cutoff);
    if (candidates.length === 0) return [];
    const lost = await queue.withoutJob(candidates);
    const added: string[] = [];
    for (const id of lost) {
      // Still queued now? (It may have started, finished or been deleted since the read.)
      if ((await db.get(id))?.status !== 'queued') continue;
      await queue.enqueue(id, { force: true });
      added.push(id);
      logger.warn({ jobId: id }, 'queued video job had no BullMQ job (its node died between the record and the queue): queued again');
    }
    return added;
  };

  const startRetention = (): void => {
    if (config.retentionMs <= 0) return;
    retentionTimer = setInterval(() => {
      if (store) deleteExpiredJobs(store, config.retentionMs, logger).catch((error: unknown) => logger.warn({ err: error }, 'retention sweep failed'));
    }, retentionSweepMs(config.retentionMs));
    retentionTimer.unref();
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
      const job = await db.get(id);
      if (!job) return false;
      await routes.queue().cancel(id, 'deleted');
      if (job.uploadPath) fs.rmSync(job.uploadPath, { force: true });
      // On another node a runner of this job stops at its next sample: the record is gone.
      await db.delete(id);
      videoJobsTotal.inc({ outcome: 'deleted' });
      return true;
    },
  };

  return {
    router: videoRouter(routes),
    events,
    canRead(jobId, owner) {
      // SQLite answers at once (as before REDIS_URL existed); Redis asynchronously.
      if (store instanceof SqliteJobStore) {
        const job = store.db.get(jobId);
        return job !== undefined && job.owner === owner;
      }
      if (!store) return false;
      return store.get(jobId).then((job) => job !== undefined && job.owner === owner);
    },
    async queueCounts() {
      return bull?.counts();
    },
    async start() {
      if (store) return;
      fs.mkdirSync(uploadsDir, { recursive: true });
      const cluster = deps.cluster;
      if (cluster) {
        const db = new RedisJobStore(cluster.redis);
        store = db;
        // Redis may not answer yet (the node starts anyway and BullMQ reconnects): housekeeping waits for the next sweep.
        try {
          await sweepOrphanUploads(uploadsDir, UPLOAD_FILE_PATTERN, db, logger, SHARED_ORPHAN_MIN_AGE_MS);
          await deleteExpiredJobs(db, config.retentionMs, logger);
        } catch (error) {
          logger.warn({ err: { message: (error as Error).message } }, 'video housekeeping skipped: Redis does not answer');
        }
        bull = new BullVideoQueue({
          redisUrl: cluster.redisUrl,
          nodeId: cluster.nodeId,
          runJobs: cluster.runJobs,
          concurrency: config.jobConcurrency,
          maxQueued: config.maxQueuedJobs,
          maxAttempts: config.maxAttempts,
          lockMs: cluster.lockMs,
          run: runJob,
          onGivenUp: async (id, reason) => {
            const job = await db.get(id);
            if (job && (job.status === 'running' || job.status === 'queued')) await failOutOfAttempts(db, job, withoutPaths(reason));
          },
          isUp: cluster.isUp,
          logger,
        });
        queue = bull;
        const counted = bull;
        setVideoQueueSource({ nodeId: cluster.nodeId, counts: () => counted.counts() });
        logger.info({ binaries: binaries.origin, uploadDir: uploadsDir, runJobs: cluster.runJobs }, 'video service starting: jobs in Redis, queue on BullMQ');
        if (cluster.runJobs) {
          const everyMs = reconcileEveryMs(cluster.lockMs);
          let scanned = false;
          let reconciling = false;
          const tick = (): void => {
            if (reconciling || !cluster.isUp()) return;
            reconciling = true;
            reconcile(db, counted, everyMs, !scanned)
              .then(
                () => (scanned = true),
                (error: unknown) => logger.warn({ err: { message: (error as Error).message } }, 'video job reconcile failed; tried again at the next tick'),
              )
              .finally(() => (reconciling = false));
          };
          tick();
          reconcileTimer = setInterval(tick, everyMs);
          reconcileTimer.unref();
        }
        startRetention();
        return;
      }
      const sqlite = new SqliteJobStore(new VideoJobStore(path.join(videoDir, 'jobs.sqlite')));
      store = sqlite;
      const db = sqlite.db;
      await sweepOrphanUploads(uploadsDir, UPLOAD_FILE_PATTERN, sqlite, logger);
      await deleteExpiredJobs(sqlite, config.retentionMs, logger);
      const local = new JobQueue({
        concurrency: config.jobConcurrency,
        maxQueued: config.maxQueuedJobs,
        run: runJob,
        onDepth: (queued) => queueDepth.set({ queue: 'video_jobs' }, queued),
      });
      queue = new LocalVideoQueue(local);
      logger.info({ binaries: binaries.origin, dataDir: config.dataDir, uploadDir: uploadsDir }, 'video service starting');
      // Jobs a previous process accepted but did not finish: resume from the start, or fail with the reason.
      const interrupted = [...db.withStatus('running'), ...db.withStatus('queued')];
      for (const job of interrupted) {
        if (job.attempts >= config.maxAttempts) {
          await failOutOfAttempts(sqlite, job);
          continue;
        }
        if (job.uploadPath && fs.existsSync(job.uploadPath)) {
          db.markQueued(job.id);
          local.enqueue(job.id, { force: true });
          logger.info({ jobId: job.id, previousStatus: job.status }, 'resuming interrupted video job');
        } else {
          db.markFailed(job.id, 'interrupted by a server restart, and its uploaded file is no longer available');
          videoJobsTotal.inc({ outcome: 'failed' });
          logger.warn({ jobId: job.id }, 'interrupted video job cannot resume: upload missing');
        }
        emit(db.get(job.id)!);
      }
      startRetention();
    },
    async close() {
      clearInterval(retentionTimer);
      retentionTimer = undefined;
      clearInterval(reconcileTimer);
      reconcileTimer = undefined;
      if (bull) setVideoQueueSource(undefined);
      await queue?.close();
      queue = undefined;
      bull = undefined;
      await store?.close();
      store = undefined;
    },
  };
}
