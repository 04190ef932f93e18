/**
 * Video jobs across nodes on one real redis-server and one shared VIDEO_UPLOAD_DIR: two node
 * processes (server/main.ts, NODE_ROLE=all) and an in-process NODE_ROLE=api node.
 * - a job uploaded on one node is read, its timeline fetched and deleted from the others;
 * - the node running a job is killed with SIGKILL: the other process takes the job up after
 *   BullMQ's lock runs out (VIDEO_JOB_LOCK_SEC), runs it from scratch and finishes it with the
 *   complete timeline, each sample index once;
 * - a DELETE on the api node stops the job where it runs and removes everything from Redis;
 * - the api node never runs a job.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { VideoJobView, VideoTimeline } from '../contract/http.ts';
import { loadConfig } from '../server/config.ts';
import { registry } from '../server/metrics/metrics.ts';
import type { RunningServer } from '../server/server.ts';
import { VIDEO_QUEUE_NAME } from '../server/video/bullmq-queue.ts';
import { type NodeProcess, spawnNode, upload, view, waitFor, waitReady } from './cluster-support.ts';
import { startTestServer } from './live-support.ts';
import { TestRedis } from './redis-support.ts';
import { makeGrayVideo } from './video-support.ts';

const LOCK_SEC = 2;
/** The long job: 4 samples a second of it (about 2 analysed a second here: it runs long enough to be killed mid-way). */
const LONG_SEC = 12;

describe('NODE_ROLE', () => {
  it('api and worker need REDIS_URL: refused at start with a message naming both; all is the default', () => {
    for (const role of ['api', 'worker']) {
      assert.throws(() => loadConfig({ NODE_ROLE: role }), /invalid configuration: NODE_ROLE=\w+ needs REDIS_URL/);
      assert.equal(loadConfig({ NODE_ROLE: role, REDIS_URL: 'redis://127.0.0.1:6379' }).cluster.role, role);
    }
    assert.equal(loadConfig({}).cluster.role, 'all');
    assert.throws(() => loadConfig({ NODE_ROLE: 'both' }), /NODE_ROLE/);
  });
});

describe('video jobs across nodes (REDIS_URL, BullMQ)', { timeout: 240_000 }, () => {
  let redis: TestRedis;
  let probe: Redis;
  let queue: Queue;
  let uploadDir: string;
  let mediaDir: string;
  const nodes: NodeProcess[] = [];
  let api: RunningServer;
  let shortVideo: string;
  let longVideo: string;

  before(async () => {
    redis = await TestRedis.start();
    probe = new Redis(redis.url, { maxRetriesPerRequest: null });
    queue = new Queue(VIDEO_QUEUE_NAME, { connection: probe });
    uploadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-shared-uploads-'));
    mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-cluster-media-'));
    shortVideo = makeGrayVideo(path.join(mediaDir, 'short.mp4'), 3, 2);
    longVideo = makeGrayVideo(path.join(mediaDir, 'long.mp4'), LONG_SEC, 4);
    const env = { REDIS_URL: redis.url, VIDEO_UPLOAD_DIR: uploadDir, VIDEO_JOB_LOCK_SEC: String(LOCK_SEC), CLUSTER_HEARTBEAT_MS: '500' };
    nodes.push(await spawnNode('proc-a', env), await spawnNode('proc-b', env));
    api = await startTestServer({ ...env, NODE_ID: 'api-c', NODE_ROLE: 'api', WORKERS: '1' });
    await api.ready;
    const deadline = Date.now() + 180_000;
    for (const node of nodes) await waitReady(node, deadline);
  });

  after(async () => {
    if (process.env.VIDEO_CLUSTER_LOGS) for (const node of nodes) fs.writeFileSync(path.join(process.env.VIDEO_CLUSTER_LOGS, `${node.id}.log`), node.output);
    for (const node of nodes) if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    await api?.close();
    await queue?.close();
    probe?.disconnect();
    await redis?.stop();
    for (const node of nodes) fs.rmSync(node.dataDir, { recursive: true, force: true });
    fs.rmSync(uploadDir, { recursive: true, force: true });
    fs.rmSync(mediaDir, { recursive: true, force: true });
  });

  it('a job uploaded on one node is read, its timeline fetched and deleted from the others', async () => {
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const id = await upload(a.url, shortVideo, 2);
    const done = await waitFor('the short job done', async () => {
      const job = await view(api.url, id);
      assert.notEqual(job.status, 'failed', JSON.stringify(job));
      return job.status === 'done' ? job : undefined;
    }, 60_000);
    assert.equal(done.framesAnalyzed, 6);
    for (const url of [api.url, b.url]) {
      const timeline = (await (await fetch(`${url}/api/v1/videos/${id}/timeline`)).json()) as VideoTimeline;
      assert.equal(timeline.complete, true);
      assert.equal(timeline.frames.length, 6);
    }
    const listed = (await (await fetch(`${b.url}/api/v1/videos`)).json()) as { jobs: VideoJobView[] };
    assert.ok(listed.jobs.some((job) => job.id === id), 'listed on another node');
    assert.equal((await fetch(`${b.url}/api/v1/videos/${id}`, { method: 'DELETE' })).status, 204);
    for (const url of [a.url, api.url]) assert.equal((await fetch(`${url}/api/v1/videos/${id}`)).status, 404);
    assert.deepEqual(await probe.keys(`moodwire:video:*${id}*`), []);
  });

  it('the node running a job is SIGKILLed: the other node runs it again from scratch and finishes it, no sample twice', async () => {
    const id = await upload(api.url, longVideo, 4);
    const expected = LONG_SEC * 4;
    // Which process took it (BullMQ records the Worker's name, our NODE_ID).
    const runner = await waitFor('the job running with some samples', async () => {
      const job = await queue.getJob(id);
      const framesAnalyzed = Number(await probe.hget(`moodwire:video:job:${id}`, 'framesAnalyzed'));
      return job?.processedBy && framesAnalyzed >= 10 ? job.processedBy : undefined;
    }, 60_000);
    const victim = nodes.find((node) => node.id === runner);
    assert.ok(victim, `processed by ${runner}, one of the processes (never the api node)`);
    const survivor = nodes.find((node) => node !== victim)!;
    const before = await view(api.url, id);
    assert.equal(before.status, 'running');
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('the second attempt to start', async () => ((await probe.hget(`moodwire:video:job:${id}`, 'attempts')) === '2' ? true : undefined), 30_000, 50);
    const pickupMs = Date.now() - killedAt;
    assert.equal((await queue.getJob(id))?.processedBy, survivor.id);
    const done = await waitFor('the job done on the survivor', async () => {
      const job = await view(api.url, id);
      assert.notEqual(job.status, 'failed', JSON.stringify(job));
      return job.status === 'done' ? job : undefined;
    }, 120_000, 250);
    const doneMs = Date.now() - killedAt;
    assert.equal(done.framesAnalyzed, expected);
    const indices = (await probe.hkeys(`moodwire:video:samples:${id}`)).map(Number).sort((x, y) => x - y);
    assert.deepEqual(indices, Array.from({ length: expected }, (_, i) => i), 'every sample index once');
    const timeline = (await (await fetch(`${survivor.url}/api/v1/videos/${id}/timeline`)).json()) as VideoTimeline;
    assert.equal(timeline.complete, true);
    assert.equal(timeline.frames.length, expected);
    assert.equal(new Set(timeline.frames.map((f) => f.t)).size, expected, 'no sample time twice');
    process.stdout.write(
      `# ${victim.id} SIGKILLed at ${before.framesAnalyzed}/${expected} samples; ${survivor.id} started attempt 2 ${pickupMs} ms later (VIDEO_JOB_LOCK_SEC=${LOCK_SEC}) and finished ${doneMs} ms after the kill\n`,
    );
  });

  it('a DELETE on the api node stops the job where it runs and removes it from Redis', async () => {
    const survivor = nodes.find((node) => node.child.exitCode === null && node.child.signalCode === null)!;
    const id = await upload(api.url, longVideo, 4);
    await waitFor('the job running', async () => (Number(await probe.hget(`moodwire:video:job:${id}`, 'framesAnalyzed')) >= 5 ? true : undefined), 60_000);
    const deletedAt = Date.now();
    assert.equal((await fetch(`${api.url}/api/v1/videos/${id}`, { method: 'DELETE' })).status, 204);
    await waitFor('the BullMQ job gone (its runner stopped)', async () => ((await queue.getJob(id)) === undefined ? true : undefined), 15_000, 50);
    const stoppedMs = Date.now() - deletedAt;
    await sleep(500);
    assert.deepEqual(await probe.keys(`moodwire:video:*${id}*`), [], 'no sample or record written back after the DELETE');
    assert.equal((await fetch(`${survivor.url}/api/v1/videos/${id}`)).status, 404);
    assert.match(survivor.output, /stopped here/);
    assert.deepEqual(fs.readdirSync(uploadDir).filter((f) => f.endsWith('.upload')), [], 'its upload is deleted from the shared folder');
    process.stdout.write(`# DELETE on the api node: the runner on ${survivor.id} stopped within ${stoppedMs} ms\n`);
  });

  it('the api node ran no job (and reports the queue counts)', async () => {
    const text = await registry.metrics();
    assert.match(text, /moodwire_video_jobs_total\{outcome="done"\} 0/);
    assert.match(text, /moodwire_video_jobs_running 0/);
    assert.match(text, /moodwire_video_jobs_waiting\{node_id="api-c"\} 0/);
    assert.match(text, /moodwire_video_jobs_active\{node_id="api-c"\} 0/);
  });
});
