/**
 * How video jobs on Redis + BullMQ recover, with real parts: one real redis-server, two node
 * processes (server/main.ts) sharing VIDEO_UPLOAD_DIR, short locks (VIDEO_JOB_LOCK_SEC=2) and
 * VIDEO_MAX_ATTEMPTS=2, small gray clips.
 * - a queued record with no BullMQ job (its node died between the two writes) runs to done: one
 *   written before the nodes start (the reconcile at start) and one while they run (the periodic
 *   reconcile), each once although both nodes reconcile;
 * - SIGTERM of the node running a job: that node puts the job back in the queue once its frames in
 *   flight are answered (not failed, not left to the stalled check) and the other node finishes
 *   it, every sample index once;
 * - a job whose node is SIGKILLed at every attempt fails after VIDEO_MAX_ATTEMPTS attempts with
 *   its reason, and never runs on two nodes at once;
 * - Redis hangs (SIGSTOP) mid-job: the job is not failed; it runs again to done when Redis answers,
 *   through BullMQ's stalled check when the outage outlasts the lock, and (a node of its own with
 *   a 30 s lock) through BullMQ's retry of the failed run when it does not;
 * - Redis killed: every video route and `video:subscribe` answer not_ready (503) at once, with no
 *   error-level log; Redis restarted: uploads are accepted and run again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis, ReplyError } from 'ioredis';
import { AppError } from '../contract/errors.ts';
import type { VideoJobView, VideoTimeline } from '../contract/http.ts';
import { VIDEO_QUEUE_NAME } from '../server/video/bullmq-queue.ts';
import { probeVideo } from '../server/video/probe.ts';
import { RedisJobStore } from '../server/video/redis-job-store.ts';
import { isAlive, type NodeProcess, spawnNode, stopNode, upload, view, waitFor, waitReady } from './cluster-support.ts';
import { connectClient, request } from './live-support.ts';
import { TestRedis } from './redis-support.ts';
import { makeGrayVideo, testBinaries } from './video-support.ts';

const LOCK_SEC = 2;
const MAX_ATTEMPTS = 2;

interface Clip {
  file: string;
  seconds: number;
  fps: number;
}

interface LogLine {
  level: number;
  msg: string;
  jobId?: string;
}

/** A node's pino lines (from `from`, an offset in its output). */
function logLines(node: NodeProcess, from = 0): LogLine[] {
  return node.output.slice(from).split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** Waits for `done` (asserting it never fails meanwhile) and checks the complete timeline on `url`: every sample index once. */
async function expectDone(url: () => string, probe: Redis, id: string, expected: number, timeoutMs: number): Promise<VideoJobView> {
  const done = await waitFor(`job ${id} done`, async () => {
    const job = await view(url(), id);
    assert.notEqual(job.status, 'failed', JSON.stringify(job));
    return job.status === 'done' ? job : undefined;
  }, timeoutMs, 200);
  assert.equal(done.framesAnalyzed, expected);
  const indices = (await probe.hkeys(`moodwire:video:samples:${id}`)).map(Number).sort((x, y) => x - y);
  assert.deepEqual(indices, Array.from({ length: expected }, (_, i) => i), 'every sample index once');
  const timeline = (await (await fetch(`${url()}/api/v1/videos/${id}/timeline`)).json()) as VideoTimeline;
  assert.equal(timeline.complete, true);
  assert.equal(timeline.frames.length, expected);
  assert.equal(new Set(timeline.frames.map((f) => f.t)).size, expected, 'no sample time twice');
  return done;
}

describe('video jobs recover across nodes (REDIS_URL, BullMQ)', { timeout: 180_000 }, () => {
  let redis: TestRedis;
  let probe: Redis;
  let queue: Queue;
  let store: RedisJobStore;
  let uploadDir: string;
  let mediaDir: string;
  let env: Record<string, string>;
  /** The nodes alive now, by NODE_ID; replaced ones are kept in `all` for cleanup. */
  const nodes = new Map<string, NodeProcess>();
  const all: NodeProcess[] = [];
  let short: Clip;
  let medium: Clip;
  let long: Clip;
  let startOrphan: string;
  let spawnedAt = 0;

  const clip = (name: string, seconds: number, fps: number): Clip => ({ file: makeGrayVideo(path.join(mediaDir, name), seconds, fps), seconds, fps });

  /** A queued record written through the store with its upload in place, and no BullMQ job: what a node dying between the two writes leaves. */
  const orphanRecord = async ({ file, fps }: Clip): Promise<string> => {
    const id = randomUUID();
    const uploadPath = path.join(uploadDir, `${id}.upload`);
    fs.copyFileSync(file, uploadPath);
    const probed = await probeVideo(uploadPath, testBinaries());
    await store.create({
      id,
      owner: 'local',
      clientKey: 'addr:127.0.0.1',
      originalName: path.basename(file),
      uploadPath,
      sizeBytes: fs.statSync(uploadPath).size,
      durationSec: probed.durationSec,
      sampledFps: fps,
      width: probed.width,
      height: probed.height,
    });
    assert.equal(await queue.getJobState(id), 'unknown', 'no BullMQ job for it');
    return id;
  };

  const start = async (id: string): Promise<NodeProcess> => {
    const node = await spawnNode(id, env);
    nodes.set(id, node);
    all.push(node);
    return node;
  };

  const alive = (): NodeProcess[] => [...nodes.values()].filter(isAlive);
  /** Both nodes up and ready (a test that failed midway may have left one stopped). */
  const ensureNodes = async (): Promise<void> => {
    for (const id of ['proc-a', 'proc-b']) if (!nodes.has(id) || !isAlive(nodes.get(id)!)) await start(id);
    const deadline = Date.now() + 90_000;
    for (const node of alive()) await waitReady(node, deadline);
  };
  const record = (id: string): Promise<Record<string, string>> => probe.hgetall(`moodwire:video:job:${id}`);
  /** A node that has started its video service (a node just respawned may still be loading its models). */
  const readyNode = (): NodeProcess => alive().find((node) => /video service starting/.test(node.output))!;
  const anyUrl = (): string => readyNode().url;

  before(async () => {
    redis = await TestRedis.start();
    probe = new Redis(redis.url, { maxRetriesPerRequest: null });
    probe.on('error', () => undefined);
    queue = new Queue(VIDEO_QUEUE_NAME, { connection: probe });
    queue.on('error', () => undefined);
    store = new RedisJobStore(probe);
    uploadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-shared-uploads-'));
    mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-recovery-media-'));
    short = clip('short.mp4', 2, 2);
    medium = clip('medium.mp4', 6, 2);
    long = clip('long.mp4', 30, 4);
    env = {
      REDIS_URL: redis.url,
      VIDEO_UPLOAD_DIR: uploadDir,
      VIDEO_JOB_LOCK_SEC: String(LOCK_SEC),
      VIDEO_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      // A job stopped by SIGTERM waits for its frames in the analyzer (2 here) before it goes back
      // to the queue; the grace leaves a busy machine time for that.
      VIDEO_MAX_INFLIGHT_FRAMES: '2',
      SHUTDOWN_GRACE_MS: '20000',
    };
    // Written before any node runs: only the reconcile at a node's start can find it.
    startOrphan = await orphanRecord(short);
    spawnedAt = Date.now();
    await ensureNodes();
  });

  after(async () => {
    if (process.env.VIDEO_CLUSTER_LOGS) all.forEach((node, i) => fs.writeFileSync(path.join(process.env.VIDEO_CLUSTER_LOGS!, `recovery-${i}-${node.id}.log`), node.output));
    for (const node of all) if (isAlive(node)) node.child.kill('SIGKILL');
    await queue?.close();
    probe?.disconnect();
    await redis?.stop();
    for (const node of all) fs.rmSync(node.dataDir, { recursive: true, force: true });
    if (uploadDir) fs.rmSync(uploadDir, { recursive: true, force: true });
    if (mediaDir) fs.rmSync(mediaDir, { recursive: true, force: true });
  });

  it('a store call Redis answers with an error (a bug, not an outage) keeps that error instead of not_ready', async () => {
    const id = randomUUID();
    await probe.set(`moodwire:video:job:${id}`, 'not a hash');
    try {
      await assert.rejects(store.get(id), (error: unknown) => error instanceof ReplyError && !(error instanceof AppError));
    } finally {
      await probe.del(`moodwire:video:job:${id}`);
    }
  });

  it('a queued record left without a BullMQ job before the nodes started runs to done once (reconcile at start)', async () => {
    await expectDone(anyUrl, probe, startOrphan, short.seconds * short.fps, 60_000);
    const doneMs = Date.now() - spawnedAt;
    assert.equal((await record(startOrphan)).attempts, '1', 'run once, although both nodes reconciled');
    const requeued = alive().filter((node) => logLines(node).some((l) => l.jobId === startOrphan && /had no BullMQ job/.test(l.msg)));
    assert.ok(requeued.length >= 1, 'a node says it queued the record again');
    process.stdout.write(`# orphan record written before the nodes started: done ${doneMs} ms after they were spawned (attempts 1)\n`);
  });

  it('a queued record left without a BullMQ job while the nodes run is found by the periodic reconcile and runs to done once', async () => {
    const createdAt = Date.now();
    const id = await orphanRecord(short);
    await waitFor('the orphan running', async () => (Number((await record(id)).attempts) >= 1 ? true : undefined), 30_000, 50);
    const pickupMs = Date.now() - createdAt;
    // Grace and period are both VIDEO_JOB_LOCK_SEC: found within about two of them.
    assert.ok(pickupMs < 4 * LOCK_SEC * 1000, `picked up ${pickupMs} ms after the record was written`);
    await expectDone(anyUrl, probe, id, short.seconds * short.fps, 60_000);
    assert.equal((await record(id)).attempts, '1', 'run once, although both nodes reconcile');
    assert.equal(await probe.zscore('moodwire:video:queued', id), null, 'no longer in the queued index');
    process.stdout.write(`# orphan record written while the nodes run: started ${pickupMs} ms later (VIDEO_JOB_LOCK_SEC=${LOCK_SEC})\n`);
  });

  it('SIGTERM of the node running a job: put back in the queue by that node (not failed, not left to the stalled check), finished by the other node, every sample once', async () => {
    await ensureNodes();
    const id = await upload(anyUrl(), medium.file, medium.fps);
    const expected = medium.seconds * medium.fps;
    const runnerId = await waitFor('the job running with some samples', async () => {
      const job = await queue.getJob(id);
      return job?.processedBy && Number((await record(id)).framesAnalyzed) >= 3 ? job.processedBy : undefined;
    }, 60_000, 50);
    const runner = nodes.get(runnerId)!;
    const survivor = alive().find((node) => node !== runner)!;
    const samplesBefore = Number((await record(id)).framesAnalyzed);
    const stoppedAt = Date.now();
    await stopNode(runner, 'SIGTERM');
    const exitMs = Date.now() - stoppedAt;
    assert.equal(runner.child.exitCode, 0, `the node exited cleanly:\n${runner.output.slice(-2000)}`);
    assert.ok(logLines(runner).some((l) => l.jobId === id && /interrupted by shutdown/.test(l.msg)), 'the runner stopped it as a shutdown');
    await waitFor('the second attempt to start', async () => ((await record(id)).attempts === '2' ? true : undefined), 30_000, 50);
    const pickupMs = Date.now() - stoppedAt;
    assert.equal((await queue.getJob(id))?.processedBy, survivor.id);
    await expectDone(anyUrl, probe, id, expected, 60_000);
    const doneMs = Date.now() - stoppedAt;
    // Put back by its node, not found by the stalled check after the lock ran out.
    for (const node of [runner, survivor]) assert.ok(!logLines(node).some((l) => l.jobId === id && /stalled/.test(l.msg)), `${node.id} saw no stall`);
    process.stdout.write(
      `# SIGTERM at ${samplesBefore}/${expected} samples: ${runner.id} exited in ${exitMs} ms; ${survivor.id} started attempt 2 ${pickupMs} ms after the signal and finished ${doneMs} ms after it\n`,
    );
  });

  it(`a job whose node is SIGKILLed at every attempt fails after VIDEO_MAX_ATTEMPTS=${MAX_ATTEMPTS} with its reason, never on two nodes at once`, async () => {
    await ensureNodes();
    const id = await upload(anyUrl(), long.file, long.fps);
    // Every 100 ms: jobs running now on every live node (their own gauge) and BullMQ's active count.
    let watching = true;
    let mostAtOnce = 0;
    let mostActive = 0;
    const watcher = (async () => {
      while (watching) {
        const running = await Promise.all(
          alive().map((node) =>
            fetch(`${node.url}/metrics`).then(
              async (res) => Number(/^moodwire_video_jobs_running (\d+)/m.exec(await res.text())?.[1] ?? 0),
              () => 0,
            ),
          ),
        );
        mostAtOnce = Math.max(mostAtOnce, running.reduce((a, b) => a + b, 0));
        mostActive = Math.max(mostActive, await queue.getActiveCount());
        await sleep(100);
      }
    })();
    const pickups: number[] = [];
    let killedAt = 0;
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        let startedAt = 0;
        const runnerId = await waitFor(`attempt ${attempt} running with some samples`, async () => {
          const fields = await record(id);
          if (fields.attempts === String(attempt)) startedAt ||= Date.now();
          const job = await queue.getJob(id);
          return fields.attempts === String(attempt) && fields.status === 'running' && Number(fields.framesAnalyzed) >= 2 && job?.processedBy ? job.processedBy : undefined;
        }, 60_000, 50);
        if (killedAt) pickups.push(startedAt - killedAt);
        const runner = nodes.get(runnerId)!;
        await stopNode(runner, 'SIGKILL');
        killedAt = Date.now();
        // Back at once (without waiting for it to get ready): a node to take the job up next time.
        await start(runner.id);
      }
      const failed = await waitFor('the job failed', async () => {
        const fields = await record(id);
        assert.notEqual(fields.status, 'done');
        return fields.status === 'failed' ? fields : undefined;
      }, 60_000, 100);
      const failedMs = Date.now() - killedAt;
      assert.equal(failed.attempts, String(MAX_ATTEMPTS), 'no attempt beyond the limit');
      assert.match(failed.error ?? '', new RegExp(`^interrupted ${MAX_ATTEMPTS} times \\(a node died or stopped mid-job\\); not run again$`));
      const viewed = await view(anyUrl(), id);
      assert.equal(viewed.status, 'failed');
      assert.equal(viewed.error, failed.error, 'clients read the reason');
      await waitFor('the BullMQ job gone', async () => ((await queue.getJobState(id)) === 'unknown' ? true : undefined), 10_000, 100);
      process.stdout.write(
        `# killed at attempts 1..${MAX_ATTEMPTS}: attempts 2..${MAX_ATTEMPTS} started ${pickups.join(', ')} ms after the kill before them (VIDEO_JOB_LOCK_SEC=${LOCK_SEC}); failed ${failedMs} ms after the last kill: ${failed.error}\n`,
      );
    } finally {
      watching = false;
      await watcher;
    }
    assert.equal(mostAtOnce, 1, 'running on one node at a time (and seen running)');
    assert.ok(mostActive <= 1, `BullMQ active at most once (${mostActive})`);
  });

  it('Redis hangs (SIGSTOP) mid-job: the job is not failed, and runs again to done once Redis answers', async () => {
    await ensureNodes();
    const id = await upload(anyUrl(), medium.file, medium.fps);
    const expected = medium.seconds * medium.fps;
    await waitFor('the job running with some samples', async () => (Number((await record(id)).framesAnalyzed) >= 3 ? true : undefined), 60_000, 50);
    const logFrom = new Map(alive().map((node) => [node, node.output.length]));
    redis.pause(true);
    // Longer than the 2 s command timeout and PING check, and than the job's lock.
    const hungMs = LOCK_SEC * 1000 + 1000;
    await sleep(hungMs);
    redis.pause(false);
    const resumedAt = Date.now();
    const done = await expectDone(anyUrl, probe, id, expected, 60_000);
    const doneMs = Date.now() - resumedAt;
    const attempts = Number((await record(id)).attempts);
    assert.equal(attempts, 2, 'run again once, from the start');
    const logs = [...logFrom].flatMap(([node, from]) => logLines(node, from));
    assert.ok(logs.some((l) => l.jobId === id && /Redis cannot be reached/.test(l.msg)), 'its runner stopped because of Redis');
    assert.deepEqual(logs.filter((l) => l.level >= 50), [], 'no error-level log');
    process.stdout.write(`# Redis hung ${hungMs} ms mid-job: run again (attempts ${attempts}) and done ${doneMs} ms after Redis answered (${done.framesAnalyzed} samples)\n`);
  });

  it('Redis killed: the video routes and video:subscribe answer not_ready at once, no error log; back when Redis returns', async () => {
    await ensureNodes();
    const node = readyNode();
    const id = await upload(node.url, short.file, short.fps);
    await expectDone(anyUrl, probe, id, short.seconds * short.fps, 60_000);
    const socket = await connectClient(node.url);
    try {
      const logFrom = node.output.length;
      await redis.kill();
      const calls: Array<[string, () => Promise<Response>]> = [
        ['upload', () => {
          const form = new FormData();
          form.append('video', new Blob([fs.readFileSync(short.file)]), 'short.mp4');
          return fetch(`${node.url}/api/v1/videos`, { method: 'POST', body: form });
        }],
        ['list', () => fetch(`${node.url}/api/v1/videos`)],
        ['job', () => fetch(`${node.url}/api/v1/videos/${id}`)],
        ['timeline', () => fetch(`${node.url}/api/v1/videos/${id}/timeline`)],
        ['delete', () => fetch(`${node.url}/api/v1/videos/${id}`, { method: 'DELETE' })],
      ];
      const slowest = { name: '', ms: 0 };
      for (const [name, call] of calls) {
        const startedAt = Date.now();
        const res = await call();
        const ms = Date.now() - startedAt;
        if (ms > slowest.ms) Object.assign(slowest, { name, ms });
        const body = (await res.json()) as { error?: { code: string; message: string } };
        assert.equal(res.status, 503, `${name}: ${JSON.stringify(body)}`);
        assert.equal(body.error?.code, 'not_ready', name);
        assert.match(body.error?.message ?? '', /Redis.*try again shortly/, name);
        assert.ok(ms < 3000, `${name} answered in ${ms} ms`);
      }
      const subscribed = await request(socket, 'video:subscribe', { id });
      assert.ok(!subscribed.ok && subscribed.error.code === 'not_ready', JSON.stringify(subscribed));
      const downLog = logLines(node, logFrom);
      assert.deepEqual(downLog.filter((l) => l.level >= 50), [], 'no error-level log while Redis is away');

      const restartedAt = Date.now();
      await redis.restart();
      // Redis restarted without its data (no persistence here): a new upload is the proof.
      const again = await waitFor('an upload accepted again', async () => {
        const form = new FormData();
        form.append('video', new Blob([fs.readFileSync(short.file)]), 'short.mp4');
        const res = await fetch(`${node.url}/api/v1/videos?fps=${short.fps}`, { method: 'POST', body: form });
        if (res.status === 202) return ((await res.json()) as { id: string }).id;
        assert.equal(res.status, 503, await res.text());
        return undefined;
      }, 30_000, 200);
      const recoveredMs = Date.now() - restartedAt;
      assert.equal((await fetch(`${node.url}/api/v1/videos`)).status, 200);
      const resubscribed = await request(socket, 'video:subscribe', { id: again });
      assert.ok(resubscribed.ok, JSON.stringify(resubscribed));
      await expectDone(anyUrl, probe, again, short.seconds * short.fps, 60_000);
      process.stdout.write(
        `# Redis killed: ${calls.length} routes and video:subscribe answered 503 not_ready (slowest: ${slowest.name} in ${slowest.ms} ms); uploads accepted again ${recoveredMs} ms after redis-server was restarted, and run to done\n`,
      );
    } finally {
      socket.close();
    }
  });
});

describe('a Redis outage shorter than the job lock (VIDEO_JOB_LOCK_SEC=30)', { timeout: 90_000 }, () => {
  let redis: TestRedis;
  let probe: Redis;
  let node: NodeProcess;
  let mediaDir: string;

  before(async () => {
    redis = await TestRedis.start();
    probe = redis.client();
    mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-outage-media-'));
    node = await spawnNode('proc-r', { REDIS_URL: redis.url, VIDEO_JOB_LOCK_SEC: '30', VIDEO_MAX_INFLIGHT_FRAMES: '2' });
    await waitReady(node, Date.now() + 60_000);
  });

  after(async () => {
    if (process.env.VIDEO_CLUSTER_LOGS) fs.writeFileSync(path.join(process.env.VIDEO_CLUSTER_LOGS, 'outage-proc-r.log'), node?.output ?? '');
    if (node && isAlive(node)) node.child.kill('SIGKILL');
    probe?.disconnect();
    await redis?.stop();
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true });
    if (mediaDir) fs.rmSync(mediaDir, { recursive: true, force: true });
  });

  it('the run that lost Redis fails in BullMQ, which runs it again at once (no failed record, no stall) to done', async () => {
    const clip = makeGrayVideo(path.join(mediaDir, 'clip.mp4'), 5, 2);
    const expected = 10;
    const id = await upload(node.url, clip, 2);
    await waitFor('the job running with some samples', async () => (Number(await probe.hget(`moodwire:video:job:${id}`, 'framesAnalyzed')) >= 2 ? true : undefined), 60_000, 50);
    const logFrom = node.output.length;
    // Past the store's 2 s command timeout, far from the 30 s lock.
    redis.pause(true);
    await sleep(3000);
    redis.pause(false);
    const resumedAt = Date.now();
    await expectDone(() => node.url, probe, id, expected, 60_000);
    const doneMs = Date.now() - resumedAt;
    assert.equal(await probe.hget(`moodwire:video:job:${id}`, 'attempts'), '2', 'run again once, from the start');
    const logs = logLines(node, logFrom).filter((l) => l.jobId === id);
    assert.ok(logs.some((l) => /Redis cannot be reached/.test(l.msg)), 'the runner stopped because of Redis');
    assert.ok(logs.some((l) => /run failed: BullMQ runs it again/.test(l.msg)), 'BullMQ retried the run');
    assert.ok(!logs.some((l) => /stalled|gave up/.test(l.msg)), 'not through the stalled check, and not given up');
    assert.deepEqual(logLines(node, logFrom).filter((l) => l.level >= 50), [], 'no error-level log');
    process.stdout.write(`# Redis hung 3 s mid-job with a 30 s lock: BullMQ retried the run at once, done ${doneMs} ms after Redis answered\n`);
  });
});
