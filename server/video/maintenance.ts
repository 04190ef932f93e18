/**
 * Housekeeping of the video service's files and rows: uploads no job refers to (a crash in the
 * middle of an upload leaves `<uuid>.upload` files) are deleted at start, and finished jobs older
 * than the retention period are deleted with their samples and upload.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JobStore } from './job-store.ts';

/**
 * Deletes the files of `uploadDir` named like the service's uploads (`pattern`) that no job row
 * refers to; anything else in the folder is left alone. Returns how many were deleted.
 * `minAgeMs` spares younger files: with REDIS_URL the folder is shared by every node, and a file
 * no job refers to yet may be another node's upload still arriving or being probed (an upload
 * older than an hour is not: a request does not last that long).
 */
export async function sweepOrphanUploads(uploadDir: string, pattern: RegExp, store: JobStore, logger: Logger, minAgeMs = 0): Promise<number> {
  const referenced = await store.uploadPaths();
  const now = Date.now();
  let deleted = 0;
  for (const entry of fs.readdirSync(uploadDir, { withFileTypes: true })) {
    if (!entry.isFile() || !pattern.test(entry.name)) continue;
    const file = path.resolve(uploadDir, entry.name);
    if (referenced.has(file)) continue;
    if (minAgeMs > 0) {
      const mtime = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
      if (mtime === undefined || now - mtime < minAgeMs) continue;
    }
    fs.rmSync(file, { force: true });
    deleted += 1;
  }
  logger.info({ deleted }, deleted > 0 ? 'deleted uploads that no job refers to' : 'no orphan uploads');
  return deleted;
}

/**
 * Deletes done and failed jobs last updated more than `retentionMs` ago, with their samples and
 * upload (a kept one, VIDEO_KEEP_UPLOADS). Returns how many. `retentionMs` 0 keeps everything.
 */
export async function deleteExpiredJobs(store: JobStore, retentionMs: number, logger: Logger, now = Date.now()): Promise<number> {
  if (retentionMs <= 0) return 0;
  const expired = await store.finishedBefore(new Date(now - retentionMs));
  for (const job of expired) {
    if (job.uploadPath) fs.rmSync(job.uploadPath, { force: true });
    await store.delete(job.id);
  }
  if (expired.length > 0) logger.info({ deleted: expired.length, retentionMs }, 'deleted finished video jobs past their retention');
  return expired.length;
}

/** How often the retention sweep runs: a tenth of the retention, at most every 10 minutes, at least every second. */
export function retentionSweepMs(retentionMs: number): number {
  return Math.max(1000, Math.min(retentionMs / 10, 10 * 60 * 1000));
}
