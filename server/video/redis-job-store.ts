/**
 * Video jobs in Redis (REDIS_URL), so every node reads every job: the same methods and bounds as
 * the SQLite store. Keys (prefix `moodwire:video:`):
 * - `job:<id>`      hash: the job's fields (absent field = null)
 * - `samples:<id>`  hash: sample index -> JSON {t, faces, skipped} (a rewrite replaces, like INSERT OR REPLACE)
 * - `thumbs:<id>`   hash: track id -> score; `jpegs:<id>` hash: track id -> JPEG bytes
 * - `owner:<owner>` sorted set: job ids by creation time (the owner's list)
 * - `active:<clientKey>` set: the client's queued or running jobs (VIDEO_MAX_QUEUED_JOBS_PER_CLIENT)
 * - `finished`      sorted set: done/failed job ids by their last update (retention)
 * - `uploads`       set: upload paths some job refers to (the orphan sweep)
 * - `queued`        sorted set: queued job ids by the time they became queued (the service's
 *                   reconcile finds queued records that have no BullMQ job, see service.ts)
 * Every write that touches a job is one Lua script that first checks the job still exists, so a
 * job deleted from another node is never brought back by a late sample, progress or thumbnail
 * write of the node that was running it; `addSample` answers false then and the runner stops.
 *
 * Redis away: every method rejects with AppError `not_ready` (the store's client has no offline
 * queue, so that is at once, or after its 2 s command timeout for a Redis that hangs); the routes
 * answer it as HTTP 503 and `video:subscribe` as a refused ack, and the same calls work again
 * once Redis answers.
 */
import { type Redis, ReplyError } from 'ioredis';
import { AppError } from '../../contract/errors.ts';
import type { VideoAnalysisSettings, VideoJobStatus } from '../../contract/http.ts';
import type { Face } from '../../contract/socket.ts';
import type { JobStore, NewVideoJob, VideoJob, VideoSample } from './job-store.ts';

const P = 'moodwire:video:';
const k = {
  job: (id: string) => `${P}job:${id}`,
  samples: (id: string) => `${P}samples:${id}`,
  thumbs: (id: string) => `${P}thumbs:${id}`,
  jpegs: (id: string) => `${P}jpegs:${id}`,
  owner: (owner: string) => `${P}owner:${owner}`,
  active: (clientKey: string) => `${P}active:${clientKey}`,
  finished: `${P}finished`,
  uploads: `${P}uploads`,
  queued: `${P}queued`,
};

/** The not_ready message of every video call while Redis cannot be reached. */
export const VIDEO_STORE_UNREACHABLE = 'video jobs are kept in Redis, which this node cannot reach now; try again shortly';

/**
 * A video call that failed because Redis cannot be reached (not_ready to clients). A job runner
 * that meets it stops without recording a failure: BullMQ runs the job again once Redis is back.
 */
export class RedisUnreachableError extends AppError {
  constructor(cause: string) {
    super('not_ready', `${VIDEO_STORE_UNREACHABLE} (${cause})`);
  }
}

/** A failed Redis exchange as thrown to callers: RedisUnreachableError, unless Redis itself answered with the error. */
export function unreachableUnlessReply(error: unknown): unknown {
  if (error instanceof AppError || error instanceof ReplyError) return error;
  return new RedisUnreachableError(error instanceof Error ? error.message : String(error));
}

/** KEYS: job, active, owner, uploads, queued; ARGV: id, createdMs, field, value, ... */
const CREATE = `
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
local path = redis.call('HGET', KEYS[1], 'uploadPath')
if path then redis.call('SADD', KEYS[4], path) end
return 1`;

/** KEYS: job, samples, thumbs, jpegs, queued; ARGV: analysis, now, id. Returns the attempt number (0: no such job). */
const START = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[3])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'progress', '0', 'framesAnalyzed', '0', 'analysis', ARGV[1], 'updatedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'error')
return attempt`;

/** KEYS: job, samples, thumbs, jpegs, queued; ARGV: now, id, nowMs. */
const REQUEUE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'queued', 'progress', '0', 'framesAnalyzed', '0', 'updatedAt', ARGV[1])
return 1`;

/** KEYS: job, samples; ARGV: index, sample json, progress, now, attempt ('' = any). */
const ADD_SAMPLE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'progress', ARGV[3], 'framesAnalyzed', tostring(tonumber(ARGV[1]) + 1), 'updatedAt', ARGV[4])
return 1`;

/** KEYS: job, finished, queued; ARGV: id, nowMs, field, value, ...: ends the job (done or failed). */
const FINISH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local client = redis.call('HGET', KEYS[1], 'clientKey')
redis.call('SREM', '${P}active:' .. client, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** KEYS: job, uploads; ARGV: now. */
const UPLOAD_GONE = `
local path = redis.call('HGET', KEYS[1], 'uploadPath')
if not path then return 0 end
redis.call('HDEL', KEYS[1], 'uploadPath')
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1])
redis.call('SREM', KEYS[2], path)
return 1`;

/** KEYS: job, samples, thumbs, jpegs, finished, uploads, queued; ARGV: id. */
const DELETE = `
local fields = redis.call('HMGET', KEYS[1], 'owner', 'clientKey', 'uploadPath')
if not fields[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', '${P}owner:' .. fields[1], ARGV[1])
redis.call('SREM', '${P}active:' .. fields[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
if fields[3] then redis.call('SREM', KEYS[6], fields[3]) end
return 1`;

/** KEYS: job, thumbs, jpegs; ARGV: track, score, jpeg. */
const PUT_THUMBNAIL = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local best = redis.call('HGET', KEYS[2], ARGV[1])
if best and tonumber(best) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1`;

function toJob(h: Record<string, string>): VideoJob | undefined {
  if (!h.id) return undefined;
  return {
    id: h.id,
    owner: h.owner!,
    clientKey: h.clientKey ?? '',
    status: h.status as VideoJobStatus,
    progress: Number(h.progress ?? 0),
    originalName: h.originalName!,
    uploadPath: h.uploadPath ?? null,
    sizeBytes: Number(h.sizeBytes),
    durationSec: Number(h.durationSec),
    sampledFps: Number(h.sampledFps),
    width: Number(h.width),
    height: Number(h.height),
    framesAnalyzed: Number(h.framesAnalyzed ?? 0),
    attempts: Number(h.attempts ?? 0),
    keepThumbnails: h.keepThumbnails === '1',
    analysis: h.analysis ? (JSON.parse(h.analysis) as VideoAnalysisSettings) : null,
    error: h.error ?? null,
    createdAt: h.createdAt!,
    updatedAt: h.updatedAt!,
  };
}

export class RedisJobStore implements JobStore {
  constructor(private readonly redis: Redis) {}

  /**
   * Runs one Redis exchange; a failure to reach Redis becomes AppError not_ready. An error Redis
   * answered with (a script or type error: a bug here, not an outage) stays what it is.
   */
  async #io<T>(exchange: () => Promise<T>): Promise<T> {
    try {
      return await exchange();
    } catch (error) {
      throw unreachableUnlessReply(error);
    }
  }

  async #eval(script: string, keys: string[], args: Array<string | number | Buffer>): Promise<number> {
    return this.#io(async () => (await this.redis.eval(script, keys.length, ...keys, ...args)) as number);
  }

  async #jobs(ids: string[]): Promise<VideoJob[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(k.job(id));
    const results = (await this.#io(() => pipeline.exec())) ?? [];
    const failed = results.find(([error]) => error);
    if (failed?.[0]) throw unreachableUnlessReply(failed[0]);
    return results.map(([, h]) => toJob(h as Record<string, string>)).filter((j): j is VideoJob => j !== undefined);
  }

  async create(job: NewVideoJob): Promise<VideoJob> {
    const now = new Date();
    const fields: Record<string, string> = {
      id: job.id,
      owner: job.owner,
      clientKey: job.clientKey,
      status: 'queued',
      progress: '0',
      originalName: job.originalName,
      uploadPath: job.uploadPath,
      sizeBytes: String(job.sizeBytes),
      durationSec: String(job.durationSec),
      sampledFps: String(job.sampledFps),
      width: String(job.width),
      height: String(job.height),
      framesAnalyzed: '0',
      attempts: '0',
      keepThumbnails: job.keepThumbnails ? '1' : '0',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    await this.#eval(
      CREATE,
      [k.job(job.id), k.active(job.clientKey), k.owner(job.owner), k.uploads, k.queued],
      [job.id, now.getTime(), ...Object.entries(fields).flat()],
    );
    return toJob(fields)!;
  }

  async get(id: string): Promise<VideoJob | undefined> {
    return toJob(await this.#io(() => this.redis.hgetall(k.job(id))));
  }

  /** Every job in the given status (a scan of every job record: for maintenance, not for requests). */
  async withStatus(status: VideoJobStatus): Promise<VideoJob[]> {
    return this.#io(async () => {
      const found: VideoJob[] = [];
      for await (const keys of this.redis.scanStream({ match: `${P}job:*`, count: 500 }) as AsyncIterable<string[]>) {
        for (const job of await this.#jobs(keys.map((key) => key.slice(`${P}job:`.length)))) if (job.status === status) found.push(job);
      }
      return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    });
  }

  /** Ids of the jobs queued (waiting for a first or new start) since before `cutoff`, oldest first: one read of the `queued` index. */
  async queuedBefore(cutoff: Date): Promise<string[]> {
    return this.#io(() => this.redis.zrangebyscore(k.queued, '-inf', `(${cutoff.getTime()}`));
  }

  async ofOwner(owner: string, limit: number): Promise<VideoJob[]> {
    return this.#jobs(await this.#io(() => this.redis.zrevrange(k.owner(owner), 0, limit - 1)));
  }

  async activeCount(clientKey: string): Promise<number> {
    return this.#io(() => this.redis.scard(k.active(clientKey)));
  }

  async finishedBefore(cutoff: Date): Promise<VideoJob[]> {
    return this.#jobs(await this.#io(() => this.redis.zrangebyscore(k.finished, '-inf', `(${cutoff.getTime()}`)));
  }

  async uploadPaths(): Promise<Set<string>> {
    return new Set(await this.#io(() => this.redis.smembers(k.uploads)));
  }

  async markRunning(id: string, analysis: VideoAnalysisSettings): Promise<number | undefined> {
    const attempt = await this.#eval(START, [k.job(id), k.samples(id), k.thumbs(id), k.jpegs(id), k.queued], [JSON.stringify(analysis), new Date().toISOString(), id]);
    return attempt > 0 ? attempt : undefined;
  }

  async markQueued(id: string): Promise<void> {
    const now = new Date();
    await this.#eval(REQUEUE, [k.job(id), k.samples(id), k.thumbs(id), k.jpegs(id), k.queued], [now.toISOString(), id, now.getTime()]);
  }

  async addSample(id: string, sample: VideoSample, progress: number, attempt?: number): Promise<boolean> {
    const json = JSON.stringify({ t: sample.t, faces: sample.faces, skipped: sample.skippedSmallFaces });
    const args = [sample.index, json, progress, new Date().toISOString(), attempt === undefined ? '' : String(attempt)];
    return (await this.#eval(ADD_SAMPLE, [k.job(id), k.samples(id)], args)) === 1;
  }

  async #finish(id: string, fields: string[]): Promise<void> {
    const now = new Date();
    await this.#eval(FINISH, [k.job(id), k.finished, k.queued], [id, now.getTime(), ...fields, 'updatedAt', now.toISOString()]);
  }

  async markDone(id: string): Promise<void> {
    await this.#finish(id, ['status', 'done', 'progress', '1']);
  }

  async markFailed(id: string, reason: string): Promise<void> {
    await this.#finish(id, ['status', 'failed', 'error', reason]);
  }

  async markUploadDeleted(id: string): Promise<void> {
    await this.#eval(UPLOAD_GONE, [k.job(id), k.uploads], [new Date().toISOString()]);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#eval(DELETE, [k.job(id), k.samples(id), k.thumbs(id), k.jpegs(id), k.finished, k.uploads, k.queued], [id])) === 1;
  }

  async samples(id: string): Promise<VideoSample[]> {
    const all = await this.#io(() => this.redis.hgetall(k.samples(id)));
    return Object.entries(all)
      .map(([index, json]) => {
        const row = JSON.parse(json) as { t: number; faces: Face[]; skipped: number };
        return { index: Number(index), t: row.t, faces: row.faces, skippedSmallFaces: row.skipped };
      })
      .sort((a, b) => a.index - b.index);
  }

  async putThumbnail(id: string, trackId: number, score: number, jpeg: Buffer): Promise<void> {
    await this.#eval(PUT_THUMBNAIL, [k.job(id), k.thumbs(id), k.jpegs(id)], [trackId, score, jpeg]);
  }

  async thumbnail(id: string, trackId: number): Promise<Buffer | undefined> {
    return (await this.#io(() => this.redis.hgetBuffer(k.jpegs(id), String(trackId)))) ?? undefined;
  }

  async thumbnailTracks(id: string): Promise<Set<number>> {
    return new Set((await this.#io(() => this.redis.hkeys(k.thumbs(id)))).map(Number));
  }

  /** The connection belongs to the node (RedisConnection); nothing to close here. */
  async close(): Promise<void> {}
}
