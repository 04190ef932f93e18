/**
 * The video API end to end on a real server (port 0): real uploads, real ffprobe/ffmpeg, the real
 * inference workers and batcher, SQLite on disk, and a restart in the middle of a job.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { httpErrorSchema, videoAcceptedSchema, videoJobViewSchema, type VideoTimeline, videoTimelineSchema } from '../contract/http.ts';
import type { VideoProgressEvent } from '../contract/socket.ts';
import { loadConfig, type VideoConfig } from '../server/config.ts';
import { createApp } from '../server/http/app.ts';
import { securityParts } from '../server/server.ts';
import { type Inference, startInference } from '../server/inference/engine.ts';
import { createVideoService, type VideoService } from '../server/video/service.ts';
import { VideoJobStore } from '../server/video/store.ts';
import { type BadFiles, childFfmpegProcesses, ffmpegEnv, groupsPan, makeBadFiles, repoRoot, TEST_ANALYSIS } from './video-support.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const modelDir = process.env.TEST_MODEL_DIR ?? path.join(repoRoot, 'models/emotion');
/** Sampling in these tests: low enough to stay quick on 2 busy cores, dense enough to track. */
const TEST_FPS = 3;

interface Running {
  service: VideoService;
  server: Server;
  url: string;
  events: VideoProgressEvent[];
  close(): Promise<void>;
}

let inference: Inference;
let bad: BadFiles;
const dataDirs: string[] = [];

function tempDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-video-'));
  dataDirs.push(dir);
  return dir;
}

/** The parsed defaults with these video settings; uploads in `<dataDir>/video/uploads` unless `uploadDir` says otherwise. */
function serviceConfig(video: Partial<VideoConfig> & { dataDir: string }) {
  const defaults = loadConfig(ffmpegEnv());
  const uploadDir = path.join(video.dataDir, 'video', 'uploads');
  return { video: { ...defaults.video, uploadDir, ...video }, ffmpeg: defaults.ffmpeg, tracking: defaults.tracking };
}

/** Asserts that a JSON answer has exactly the shape of a contract/http.ts schema (nothing missing, nothing extra). */
function assertShape(schema: { parse(value: unknown): unknown }, body: unknown): void {
  assert.deepEqual(schema.parse(body), body);
}

async function startVideoServer(config: Partial<VideoConfig> & { dataDir: string }): Promise<Running> {
  const service = createVideoService({ analyzer: () => inference.analyzer, config: serviceConfig(config), logger, describeAnalysis: () => TEST_ANALYSIS });
  const events: VideoProgressEvent[] = [];
  service.events.on('progress', (e) => events.push(e));
  await service.start();
  const app = createApp({
    analyzer: () => inference.analyzer,
    pool: () => inference.pool,
    maxImageBytes: 4 * 1024 * 1024,
    clientDir: path.join(config.dataDir, 'no-client'),
    logger,
    videoRouter: service.router,
    ...securityParts(loadConfig({}).security),
    metricsOnMainPort: true,
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    service,
    server,
    url: `http://127.0.0.1:${port}/api/v1/videos`,
    events,
    async close() {
      await service.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function upload(url: string, file: string, options: { fps?: number; field?: string; name?: string } = {}) {
  const form = new FormData();
  form.append(options.field ?? 'video', new Blob([fs.readFileSync(file)]), options.name ?? path.basename(file));
  const target = options.fps ? `${url}?fps=${options.fps}` : url;
  const response = await fetch(target, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function getJob(url: string, id: string) {
  const response = await fetch(`${url}/${id}`);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function waitFor(url: string, id: string, until: (job: Record<string, any>) => boolean, timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJob(url, id);
    if (until(body)) return body;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last state ${JSON.stringify(body)}`);
    await sleep(200);
  }
}

function uploadsLeft(dataDir: string): string[] {
  const dir = path.join(dataDir, 'video', 'uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

before(async () => {
  bad = makeBadFiles();
  const config = loadConfig({ MODEL_DIR: modelDir, WORKERS: '2', LOG_LEVEL: 'silent' });
  inference = await startInference(config, logger);
});

after(async () => {
  await inference?.close();
  fs.rmSync(bad.dir, { recursive: true, force: true });
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('POST /api/v1/videos refuses what is not a decodable video', () => {
  let running: Running;
  let dataDir: string;
  before(async () => {
    dataDir = tempDataDir();
    running = await startVideoServer({ dataDir, maxUploadBytes: 200 * 1024 });
  });
  after(() => running.close());

  const cases = [
    { name: 'a text file', file: () => bad.text, status: 415, code: 'unsupported_media_type', message: /not a video file/ },
    { name: 'audio only', file: () => bad.audioOnly, status: 415, code: 'unsupported_media_type', message: /no video stream/ },
    { name: 'a truncated mp4', file: () => bad.truncated, status: 422, code: 'undecodable_video', message: /truncated or corrupt/ },
    { name: 'zero bytes', file: () => bad.empty, status: 422, code: 'undecodable_video', message: /empty/ },
  ];
  for (const c of cases) {
    it(`answers ${c.status} ${c.code} to ${c.name}`, async () => {
      const { status, body } = await upload(running.url, c.file());
      assert.equal(status, c.status);
      assertShape(httpErrorSchema, body);
      assert.equal(body.error.code, c.code);
      assert.match(body.error.message, c.message);
      assert.deepEqual(uploadsLeft(dataDir), [], 'a refused upload is deleted');
    });
  }

  it('answers 413 above the size limit, 400 for a wrong field, 415 without multipart, 404 for unknown ids', async () => {
    const big = await upload(running.url, groupsPan); // 266 kB > 200 kB
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');
    const field = await upload(running.url, bad.text, { field: 'file' });
    assert.equal(field.status, 400);
    assert.match(field.body.error.message, /"video"/);
    const raw = await fetch(running.url, { method: 'POST', body: 'x', headers: { 'content-type': 'video/mp4' } });
    assert.equal(raw.status, 415);
    const fps = await upload(running.url, bad.text, { fps: 1000 });
    assert.equal(fps.status, 400);
    assert.equal(fps.body.error.message, 'fps must be a number of frames per second from 0.1 to 30');
    assert.equal((await getJob(running.url, 'nope')).status, 404);
    assert.equal((await getJob(running.url, '6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0009')).body.error.code, 'not_found');
    assert.deepEqual(uploadsLeft(dataDir), []);
  });
});

/** Tracks that cover most of a segment's samples: the faces "tracked" in it. */
function steadyTracks(timeline: VideoTimeline, from: number, to: number) {
  const samplesIn = timeline.frames.filter((f) => f.t >= from && f.t < to).length;
  const tracks = timeline.tracks
    .map((track) => ({ id: track.trackId, n: track.samples.filter((s) => s.t >= from && s.t < to).length }))
    .filter((t) => t.n > 0);
  return { samplesIn, all: tracks, steady: tracks.filter((t) => t.n >= 0.6 * samplesIn) };
}

describe('a real upload of groups-pan.mp4', () => {
  let running: Running;
  let dataDir: string;
  before(async () => {
    dataDir = tempDataDir();
    running = await startVideoServer({ dataDir });
  });
  after(() => running.close());

  it('is analysed to done with 3-4 stable tracks per 4-second segment, JSON and CSV', async () => {
    const accepted = await upload(running.url, groupsPan, { fps: TEST_FPS });
    assert.equal(accepted.status, 202);
    assertShape(videoAcceptedSchema, accepted.body);
    assert.equal(accepted.body.status, 'queued');
    const id = accepted.body.id as string;

    const job = await waitFor(running.url, id, (j) => j.status === 'done' || j.status === 'failed');
    assert.equal(job.status, 'done', JSON.stringify(job));
    assertShape(videoJobViewSchema, job);
    assert.equal(job.progress, 1);
    assert.equal(job.sampledFps, TEST_FPS);
    assert.ok(Math.abs(job.durationSec - 12) < 0.1);
    assert.equal(job.framesAnalyzed, 12 * TEST_FPS);

    const progress = running.events.filter((e) => e.id === id);
    assert.deepEqual([...new Set(progress.map((e) => e.status))], ['running', 'done']);
    const values = progress.map((e) => e.progress);
    assert.ok(values.every((v, i) => i === 0 || v >= values[i - 1]!), 'progress never goes back');
    assert.ok(values.some((v) => v > 0 && v < 1), 'intermediate progress is pushed');

    const timeline = (await (await fetch(`${running.url}/${id}/timeline`)).json()) as VideoTimeline;
    assertShape(videoTimelineSchema, timeline);
    assert.equal(timeline.complete, true);
    assert.equal(timeline.frames.length, 12 * TEST_FPS);
    for (const [from, to, expected] of [[0, 4, 3], [4, 8, 4], [8, 12, 4]] as const) {
      const seg = steadyTracks(timeline, from, to);
      assert.ok(
        seg.steady.length >= 3 && seg.steady.length <= 4,
        `segment ${from}-${to}s: ${seg.steady.length} steady tracks (expected ${expected}): ${JSON.stringify(seg.all)}`,
      );
      // Stable ids: few short-lived extra tracks (faces cut by the frame edge while zooming).
      assert.ok(seg.all.length <= seg.steady.length + 2, `segment ${from}-${to}s: id churn ${JSON.stringify(seg.all)}`);
    }
    for (const track of timeline.tracks) {
      for (const s of track.samples) {
        assert.ok(s.box.x >= -5 && s.box.y >= -5 && s.box.x + s.box.width <= 645 && s.box.y + s.box.height <= 365, 'boxes in source pixels');
        const sum = Object.values(s.emotions).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-2);
      }
      const shares = Object.values(track.summary.dominantShare).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(shares - 1) < 1e-2);
      assert.ok(Math.abs(track.summary.timeOnScreenSec - track.samples.length / TEST_FPS) < 1e-3);
    }

    const csvResponse = await fetch(`${running.url}/${id}/timeline?format=csv`);
    assert.match(csvResponse.headers.get('content-type') ?? '', /text\/csv/);
    const rows = (await csvResponse.text()).trim().split('\n');
    assert.match(rows[0]!, /^track_id,t,x,y,width,height,score,dominant,angry,/);
    assert.equal(rows.length - 1, timeline.tracks.reduce((n, t) => n + t.samples.length, 0));
    assert.equal((await fetch(`${running.url}/${id}/timeline?format=xml`)).status, 400);

    assert.deepEqual(uploadsLeft(dataDir), [], 'the upload is deleted once analysed');
    assert.deepEqual(childFfmpegProcesses(), []);

    const removed = await fetch(`${running.url}/${id}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    assert.equal((await getJob(running.url, id)).status, 404);
  });

  it('DELETE stops a running job and its ffmpeg', async () => {
    const { body } = await upload(running.url, groupsPan, { fps: TEST_FPS });
    await waitFor(running.url, body.id, (j) => j.status === 'running' && j.framesAnalyzed > 0);
    const removed = await fetch(`${running.url}/${body.id}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    assert.equal((await getJob(running.url, body.id)).status, 404);
    assert.deepEqual(uploadsLeft(dataDir), []);
    await sleep(200);
    assert.deepEqual(childFfmpegProcesses(), []);
  });
});

describe('a restart in the middle of a job', () => {
  it('resumes the job whose upload is still there and fails, with its reason, the one whose upload is gone', async () => {
    const dataDir = tempDataDir();
    const first = await startVideoServer({ dataDir, jobConcurrency: 1 });
    const resumable = (await upload(first.url, groupsPan, { fps: TEST_FPS })).body.id as string;
    const orphan = (await upload(first.url, groupsPan, { fps: TEST_FPS })).body.id as string;
    await waitFor(first.url, resumable, (j) => j.status === 'running' && j.progress > 0.2);
    assert.equal((await getJob(first.url, orphan)).body.status, 'queued');
    await first.close();
    assert.deepEqual(childFfmpegProcesses(), [], 'close() stops ffmpeg');

    // What the db says between the two processes: nothing lost, nothing marked done.
    const store = new VideoJobStore(path.join(dataDir, 'video', 'jobs.sqlite'));
    const interrupted = store.get(resumable)!;
    const orphanJob = store.get(orphan)!;
    store.close();
    assert.equal(interrupted.status, 'running');
    assert.ok(interrupted.framesAnalyzed > 0 && interrupted.framesAnalyzed < 12 * TEST_FPS);
    fs.rmSync(orphanJob.uploadPath!); // e.g. a wiped temp volume

    const second = await startVideoServer({ dataDir, jobConcurrency: 1 });
    try {
      const failed = (await getJob(second.url, orphan)).body;
      assert.equal(failed.status, 'failed');
      assertShape(videoJobViewSchema, failed);
      assert.match(failed.error, /interrupted by a server restart.*no longer available/);
      const done = await waitFor(second.url, resumable, (j) => j.status === 'done' || j.status === 'failed');
      assert.equal(done.status, 'done', JSON.stringify(done));
      assert.equal(done.framesAnalyzed, 12 * TEST_FPS);
      const timeline = (await (await fetch(`${second.url}/${resumable}/timeline`)).json()) as VideoTimeline;
      assert.equal(timeline.frames.length, 12 * TEST_FPS, 'no sample twice, none missing');
      assert.deepEqual(timeline.frames.map((f) => f.t), Array.from({ length: 12 * TEST_FPS }, (_, i) => Math.round((i / TEST_FPS) * 1000) / 1000));
      assert.ok(second.events.some((e) => e.id === orphan && e.status === 'failed'));
      assert.deepEqual(uploadsLeft(dataDir), []);
    } finally {
      await second.close();
    }
  });
});
