/** Video jobs and their analysed samples, persisted in one SQLite file (the service opens `<dataDir>/video/jobs.sqlite`). */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { VideoAnalysisSettings, VideoJobStatus } from '../../contract/http.ts';
import type { Face } from '../../contract/socket.ts';

export interface VideoJob {
  id: string;
  /** Whose job this is (`Caller.owner`); only its owner sees or deletes it. */
  owner: string;
  /** The per-client limit key (`limitKey(caller)`) its queued/running time counts against. */
  clientKey: string;
  status: VideoJobStatus;
  progress: number;
  originalName: string;
  /** Absolute path of the uploaded file; null once deleted. */
  uploadPath: string | null;
  sizeBytes: number;
  durationSec: number;
  sampledFps: number;
  /** Source frame size (boxes are in these pixels). */
  width: number;
  height: number;
  framesAnalyzed: number;
  /** How many times analysis started (a restart re-runs an interrupted job). */
  attempts: number;
  /** The uploader asked to keep a small picture of each face track (deleted with the job). */
  keepThumbnails: boolean;
  /** What shaped the results: recorded when analysis starts; null before. */
  analysis: VideoAnalysisSettings | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One analysed sample: the tracked faces at media time `t` (seconds). */
export interface VideoSample {
  index: number;
  t: number;
  faces: Face[];
  /** faces found in this sample but smaller than MIN_FACE_SIZE, so not analysed */
  skippedSmallFaces: number;
}

interface JobRow {
  id: string;
  owner: string;
  client_key: string;
  status: VideoJobStatus;
  progress: number;
  original_name: string;
  upload_path: string | null;
  size_bytes: number;
  duration_sec: number;
  sampled_fps: number;
  width: number;
  height: number;
  frames_analyzed: number;
  attempts: number;
  keep_thumbnails: number;
  analysis: string | null;
  error: string | null;
  created_at: string;
  updated_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS video_jobs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL DEFAULT 'local',
  client_key TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
  progress REAL NOT NULL DEFAULT 0,
  original_name TEXT NOT NULL,
  upload_path TEXT,
  size_bytes INTEGER NOT NULL,
  duration_sec REAL NOT NULL,
  sampled_fps REAL NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  frames_analyzed INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  keep_thumbnails INTEGER NOT NULL DEFAULT 0,
  analysis TEXT,
  error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS video_samples (
  job_id TEXT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  t REAL NOT NULL,
  faces TEXT NOT NULL,
  skipped_small INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS video_thumbnails (
  job_id TEXT NOT NULL REFERENCES video_jobs(id) ON DELETE CASCADE,
  track_id INTEGER NOT NULL,
  score REAL NOT NULL,
  jpeg BLOB NOT NULL,
  PRIMARY KEY (job_id, track_id)
);
`;

/** Indexes over columns that older databases gain in `migrate`, so created after it. */
const INDEXES = `
CREATE INDEX IF NOT EXISTS video_jobs_owner ON video_jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS video_jobs_client ON video_jobs (client_key, status);
`;

/** Columns added after the first release: existing databases get them with these definitions. */
const ADDED_COLUMNS: ReadonlyArray<{ name: string; definition: string }> = [
  { name: 'owner', definition: "TEXT NOT NULL DEFAULT 'local'" },
  { name: 'client_key', definition: "TEXT NOT NULL DEFAULT ''" },
  { name: 'attempts', definition: 'INTEGER NOT NULL DEFAULT 0' },
  { name: 'keep_thumbnails', definition: 'INTEGER NOT NULL DEFAULT 0' },
  { name: 'analysis', definition: 'TEXT' },
];
const ADDED_SAMPLE_COLUMNS: ReadonlyArray<{ name: string; definition: string }> = [{ name: 'skipped_small', definition: 'INTEGER NOT NULL DEFAULT 0' }];

/** Brings a database written by an older version up to SCHEMA (jobs from before owners belong to `local`). */
function migrate(db: Database.Database): void {
  const present = new Set(db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'video_jobs\')').all().map((c) => c.name));
  for (const column of ADDED_COLUMNS) {
    if (!present.has(column.name)) db.exec(`ALTER TABLE video_jobs ADD COLUMN ${column.name} ${column.definition}`);
  }
  const sampleColumns = new Set(db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'video_samples\')').all().map((c) => c.name));
  for (const column of ADDED_SAMPLE_COLUMNS) {
    if (!sampleColumns.has(column.name)) db.exec(`ALTER TABLE video_samples ADD COLUMN ${column.name} ${column.definition}`);
  }
}

function toJob(row: JobRow): VideoJob {
  return {
    id: row.id,
    owner: row.owner,
    clientKey: row.client_key,
    status: row.status,
    progress: row.progress,
    originalName: row.original_name,
    uploadPath: row.upload_path,
    sizeBytes: row.size_bytes,
    durationSec: row.duration_sec,
    sampledFps: row.sampled_fps,
    width: row.width,
    height: row.height,
    framesAnalyzed: row.frames_analyzed,
    attempts: row.attempts,
    keepThumbnails: row.keep_thumbnails === 1,
    analysis: row.analysis ? (JSON.parse(row.analysis) as VideoAnalysisSettings) : null,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface NewVideoJob {
  id: string;
  owner: string;
  clientKey: string;
  originalName: string;
  uploadPath: string;
  sizeBytes: number;
  durationSec: number;
  sampledFps: number;
  width: number;
  height: number;
  keepThumbnails?: boolean;
}

/**
 * Job state and per-sample results in SQLite (WAL), so both survive a restart. Every write is
 * synchronous and small (one row a sample), which keeps a crash from losing more than one sample.
 */
export class VideoJobStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(dbFile: string) {
    fs.mkdirSync(path.dirname(dbFile), { recursive: true });
    this.#db = new Database(dbFile);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.exec(SCHEMA);
    migrate(this.#db);
    this.#db.exec(INDEXES);
    const db = this.#db;
    this.#statements = {
      insert: db.prepare(
        `INSERT INTO video_jobs (id, owner, client_key, status, original_name, upload_path, size_bytes, duration_sec, sampled_fps, width, height, keep_thumbnails, created_at, updated_at)
         VALUES (@id, @owner, @clientKey, 'queued', @originalName, @uploadPath, @sizeBytes, @durationSec, @sampledFps, @width, @height, @keepThumbnails, @now, @now)`,
      ),
      get: db.prepare<[string], JobRow>('SELECT * FROM video_jobs WHERE id = ?'),
      byStatus: db.prepare<[string], JobRow>('SELECT * FROM video_jobs WHERE status = ? ORDER BY created_at, rowid'),
      byOwner: db.prepare<[string, number], JobRow>('SELECT * FROM video_jobs WHERE owner = ? ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      activeOfClient: db.prepare<[string], { n: number }>(
        `SELECT COUNT(*) AS n FROM video_jobs WHERE client_key = ? AND status IN ('queued', 'running')`,
      ),
      finishedBefore: db.prepare<[string], JobRow>(`SELECT * FROM video_jobs WHERE status IN ('done', 'failed') AND updated_at < ? ORDER BY updated_at`),
      uploadPaths: db.prepare<[], { upload_path: string }>('SELECT upload_path FROM video_jobs WHERE upload_path IS NOT NULL'),
      start: db.prepare(
        `UPDATE video_jobs SET status = 'running', progress = 0, frames_analyzed = 0, attempts = attempts + 1, analysis = ?, error = NULL, updated_at = ? WHERE id = ?`,
      ),
      requeue: db.prepare(`UPDATE video_jobs SET status = 'queued', progress = 0, frames_analyzed = 0, updated_at = ? WHERE id = ?`),
      progress: db.prepare('UPDATE video_jobs SET progress = ?, frames_analyzed = ?, updated_at = ? WHERE id = ?'),
      done: db.prepare(`UPDATE video_jobs SET status = 'done', progress = 1, updated_at = ? WHERE id = ?`),
      failed: db.prepare(`UPDATE video_jobs SET status = 'failed', error = ?, updated_at = ? WHERE id = ?`),
      uploadGone: db.prepare('UPDATE video_jobs SET upload_path = NULL, updated_at = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM video_jobs WHERE id = ?'),
      addSample: db.prepare('INSERT OR REPLACE INTO video_samples (job_id, idx, t, faces, skipped_small) VALUES (?, ?, ?, ?, ?)'),
      clearSamples: db.prepare('DELETE FROM video_samples WHERE job_id = ?'),
      clearThumbnails: db.prepare('DELETE FROM video_thumbnails WHERE job_id = ?'),
      samples: db.prepare<[string], { idx: number; t: number; faces: string; skipped_small: number }>(
        'SELECT idx, t, faces, skipped_small FROM video_samples WHERE job_id = ? ORDER BY idx',
      ),
      // A track's thumbnail is replaced only by a better-scored face.
      putThumbnail: db.prepare(
        `INSERT INTO video_thumbnails (job_id, track_id, score, jpeg) VALUES (?, ?, ?, ?)
         ON CONFLICT (job_id, track_id) DO UPDATE SET score = excluded.score, jpeg = excluded.jpeg WHERE excluded.score > video_thumbnails.score`,
      ),
      thumbnail: db.prepare<[string, number], { jpeg: Buffer }>('SELECT jpeg FROM video_thumbnails WHERE job_id = ? AND track_id = ?'),
      thumbnailTracks: db.prepare<[string], { track_id: number }>('SELECT track_id FROM video_thumbnails WHERE job_id = ?'),
    };
  }

  create(job: NewVideoJob): VideoJob {
    this.#statements.insert.run({ ...job, keepThumbnails: job.keepThumbnails ? 1 : 0, now: new Date().toISOString() });
    return this.get(job.id)!;
  }

  get(id: string): VideoJob | undefined {
    const row = this.#statements.get.get(id);
    return row ? toJob(row) : undefined;
  }

  withStatus(status: VideoJobStatus): VideoJob[] {
    return this.#statements.byStatus.all(status).map(toJob);
  }

  /** The owner's jobs, newest first, at most `limit`. */
  ofOwner(owner: string, limit: number): VideoJob[] {
    return this.#statements.byOwner.all(owner, limit).map(toJob);
  }

  /** Jobs of one client (`limitKey`) that are queued or running. */
  activeCount(clientKey: string): number {
    return this.#statements.activeOfClient.get(clientKey)?.n ?? 0;
  }

  /** Done or failed jobs last updated before `cutoff`, oldest first. */
  finishedBefore(cutoff: Date): VideoJob[] {
    return this.#statements.finishedBefore.all(cutoff.toISOString()).map(toJob);
  }

  /** Every upload file a job still refers to (absolute paths). */
  uploadPaths(): Set<string> {
    return new Set(this.#statements.uploadPaths.all().map((row) => row.upload_path));
  }

  /** Running from scratch with `analysis`: earlier partial results (an interrupted attempt) are dropped. */
  markRunning(id: string, analysis: VideoAnalysisSettings): void {
    this.#db.transaction(() => {
      this.#statements.clearSamples.run(id);
      this.#statements.clearThumbnails.run(id);
      this.#statements.start.run(JSON.stringify(analysis), new Date().toISOString(), id);
    })();
  }

  markQueued(id: string): void {
    this.#db.transaction(() => {
      this.#statements.clearSamples.run(id);
      this.#statements.clearThumbnails.run(id);
      this.#statements.requeue.run(new Date().toISOString(), id);
    })();
  }

  /** One analysed sample and the job's progress, written together. */
  addSample(id: string, sample: VideoSample, progress: number): void {
    this.#db.transaction(() => {
      this.#statements.addSample.run(id, sample.index, sample.t, JSON.stringify(sample.faces), sample.skippedSmallFaces);
      this.#statements.progress.run(progress, sample.index + 1, new Date().toISOString(), id);
    })();
  }

  markDone(id: string): void {
    this.#statements.done.run(new Date().toISOString(), id);
  }

  markFailed(id: string, reason: string): void {
    this.#statements.failed.run(reason, new Date().toISOString(), id);
  }

  markUploadDeleted(id: string): void {
    this.#statements.uploadGone.run(new Date().toISOString(), id);
  }

  /** Removes the job and its samples. */
  delete(id: string): boolean {
    return this.#statements.remove.run(id).changes > 0;
  }

  samples(id: string): VideoSample[] {
    return this.#statements.samples.all(id).map((row) => ({
      index: row.idx,
      t: row.t,
      faces: JSON.parse(row.faces) as Face[],
      skippedSmallFaces: row.skipped_small,
    }));
  }

  /** Keeps `jpeg` as track `trackId`'s thumbnail unless it already has one with a higher score. */
  putThumbnail(id: string, trackId: number, score: number, jpeg: Buffer): void {
    this.#statements.putThumbnail.run(id, trackId, score, jpeg);
  }

  thumbnail(id: string, trackId: number): Buffer | undefined {
    return this.#statements.thumbnail.get(id, trackId)?.jpeg;
  }

  /** Tracks of the job that have a thumbnail. */
  thumbnailTracks(id: string): Set<number> {
    return new Set(this.#statements.thumbnailTracks.all(id).map((row) => row.track_id));
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
