/**
 * What the video service and routes need from a job store. Two implementations with the same
 * methods and bounds: `SqliteJobStore` (one node; today's SQLite file, store.ts) and
 * `RedisJobStore` (REDIS_URL: every node reads and writes every job; redis-job-store.ts).
 * Every method is asynchronous because Redis is; the SQLite one does its work synchronously
 * inside the call, exactly as before.
 */
import type { VideoAnalysisSettings, VideoJobStatus } from '../../contract/http.ts';
import type { NewVideoJob, VideoJob, VideoJobStore, VideoSample } from './store.ts';

export type { NewVideoJob, VideoJob, VideoSample } from './store.ts';

export interface JobStore {
  create(job: NewVideoJob): Promise<VideoJob>;
  get(id: string): Promise<VideoJob | undefined>;
  withStatus(status: VideoJobStatus): Promise<VideoJob[]>;
  /** The owner's jobs, newest first, at most `limit`. */
  ofOwner(owner: string, limit: number): Promise<VideoJob[]>;
  /** Jobs of one client (`limitKey`) that are queued or running. */
  activeCount(clientKey: string): Promise<number>;
  /** Done or failed jobs last updated before `cutoff`, oldest first. */
  finishedBefore(cutoff: Date): Promise<VideoJob[]>;
  /** Every upload file a job still refers to (absolute paths). */
  uploadPaths(): Promise<Set<string>>;
  /** Running from scratch with `analysis` (earlier partial results dropped): the attempt number, undefined when the job no longer exists. */
  markRunning(id: string, analysis: VideoAnalysisSettings): Promise<number | undefined>;
  markQueued(id: string): Promise<void>;
  /**
   * One sample and the job's progress, written together. False when nothing was written: the job
   * no longer exists (deleted, maybe from another node) or, given `attempt`, another attempt has
   * started since (the caller is a runner that lost its job and must stop).
   */
  addSample(id: string, sample: VideoSample, progress: number, attempt?: number): Promise<boolean>;
  markDone(id: string): Promise<void>;
  markFailed(id: string, reason: string): Promise<void>;
  markUploadDeleted(id: string): Promise<void>;
  /** Removes the job, its samples and thumbnails. */
  delete(id: string): Promise<boolean>;
  samples(id: string): Promise<VideoSample[]>;
  /** Keeps `jpeg` as track `trackId`'s thumbnail unless it already has one with a higher score (nothing if the job is gone). */
  putThumbnail(id: string, trackId: number, score: number, jpeg: Buffer): Promise<void>;
  thumbnail(id: string, trackId: number): Promise<Buffer | undefined>;
  thumbnailTracks(id: string): Promise<Set<number>>;
  close(): Promise<void>;
}

/** The single-node store: the SQLite `VideoJobStore`, each call done synchronously as before. */
export class SqliteJobStore implements JobStore {
  constructor(readonly db: VideoJobStore) {}
  async create(job: NewVideoJob): Promise<VideoJob> {
    return this.db.create(job);
  }
  async get(id: string): Promise<VideoJob | undefined> {
    return this.db.get(id);
  }
  async withStatus(status: VideoJobStatus): Promise<VideoJob[]> {
    return this.db.withStatus(status);
  }
  async ofOwner(owner: string, limit: number): Promise<VideoJob[]> {
    return this.db.ofOwner(owner, limit);
  }
  async activeCount(clientKey: string): Promise<number> {
    return this.db.activeCount(clientKey);
  }
  async finishedBefore(cutoff: Date): Promise<VideoJob[]> {
    return this.db.finishedBefore(cutoff);
  }
  async uploadPaths(): Promise<Set<string>> {
    return this.db.uploadPaths();
  }
  async markRunning(id: string, analysis: VideoAnalysisSettings): Promise<number | undefined> {
    this.db.markRunning(id, analysis);
    return this.db.get(id)?.attempts;
  }
  async markQueued(id: string): Promise<void> {
    this.db.markQueued(id);
  }
  async addSample(id: string, sample: VideoSample, progress: number): Promise<boolean> {
    this.db.addSample(id, sample, progress);
    return true;
  }
  async markDone(id: string): Promise<void> {
    this.db.markDone(id);
  }
  async markFailed(id: string, reason: string): Promise<void> {
    this.db.markFailed(id, reason);
  }
  async markUploadDeleted(id: string): Promise<void> {
    this.db.markUploadDeleted(id);
  }
  async delete(id: string): Promise<boolean> {
    return this.db.delete(id);
  }
  async samples(id: string): Promise<VideoSample[]> {
    return this.db.samples(id);
  }
  async putThumbnail(id: string, trackId: number, score: number, jpeg: Buffer): Promise<void> {
    this.db.putThumbnail(id, trackId, score, jpeg);
  }
  async thumbnail(id: string, trackId: number): Promise<Buffer | undefined> {
    return this.db.thumbnail(id, trackId);
  }
  async thumbnailTracks(id: string): Promise<Set<number>> {
    return this.db.thumbnailTracks(id);
  }
  async close(): Promise<void> {
    this.db.close();
  }
}
