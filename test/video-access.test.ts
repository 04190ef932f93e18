/**
 * Access control and abuse limits of the video API over real HTTP (port 0), real ffprobe/ffmpeg
 * and SQLite, with a stub analyzer held by a gate so jobs stay queued/running while a test needs
 * them to: jobs belong to their owner (404 for everyone else, GET /api/v1/videos lists one's own),
 * uploads at once and jobs queued per client are refused with 429 before the body is read,
 * over-long videos with 413 video_too_long, and no refusal names a server path. Callers are real
 * API keys (MOODWIRE_API_KEYS) sent as `Authorization: Bearer`, checked by the app's own middleware.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { httpErrorSchema, videoJobListSchema } from '../contract/http.ts';
import { loadConfig } from '../server/config.ts';
import { createApp } from '../server/http/app.ts';
import { ApiKeys } from '../server/security/api-keys.ts';
import { securityParts } from '../server/server.ts';
import { createVideoService, type VideoService } from '../server/video/service.ts';
import { ffmpegEnv, FrameGate, makeGrayVideo, stubAnalyzer, TEST_ANALYSIS } from './video-support.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-access-'));
const uploadDir = path.join(dataDir, 'incoming');
const media = path.join(dataDir, 'media');
fs.mkdirSync(media);

/** Held while a test needs its jobs to stay queued or running; opened before they are deleted. */
const gate = new FrameGate();
let service: VideoService;
let server: Server;
let url: string;
let gray2s: string;

/** Callers by name, each with its own API key (the server runs with these keys). */
const KEYS: Record<string, string> = {
  a: 'video-access-key-a-000000',
  b: 'video-access-key-b-000000',
  anon: 'video-access-key-c-000000',
};
const ownerOf = (name: string): string => new ApiKeys(Object.values(KEYS)).owner(KEYS[name]!)!;
const auth = (name: string | undefined): Record<string, string> => (name ? { Authorization: `Bearer ${KEYS[name]}` } : {});

before(async () => {
  gray2s = makeGrayVideo(path.join(media, 'gray2s.mp4'), 2);
  const config = loadConfig({
    ...ffmpegEnv(),
    MOODWIRE_DATA_DIR: dataDir,
    VIDEO_UPLOAD_DIR: uploadDir,
    MAX_CONCURRENT_UPLOADS_PER_CLIENT: '1',
    VIDEO_MAX_QUEUED_JOBS_PER_CLIENT: '2',
    VIDEO_MAX_FRAMES_PER_JOB: '10',
    VIDEO_JOB_CONCURRENCY: '1',
    MOODWIRE_API_KEYS: Object.values(KEYS).join(','),
  });
  service = createVideoService({ analyzer: stubAnalyzer(gate), config, logger, describeAnalysis: () => TEST_ANALYSIS });
  await service.start();
  const app = createApp({
    analyzer: () => undefined,
    pool: () => undefined,
    maxImageBytes: 1024,
    clientDir: path.join(dataDir, 'no-client'),
    logger,
    videoRouter: service.router,
    ...securityParts(config.security),
    metricsOnMainPort: true,
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/videos`;
});

after(async () => {
  gate.open();
  await service.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function upload(caller: string | undefined, file: string, options: { name?: string; fps?: number } = {}) {
  const form = new FormData();
  form.append('video', new Blob([fs.readFileSync(file)]), options.name ?? path.basename(file));
  const headers = auth(caller);
  const response = await fetch(options.fps ? `${url}?fps=${options.fps}` : url, { method: 'POST', body: form, headers });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function call(caller: string | undefined, method: string, suffix: string) {
  const response = await fetch(`${url}${suffix}`, { method, headers: auth(caller) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

/** Deletes a job (frames let through first, so a running job can stop). */
async function remove(caller: string, id: string): Promise<void> {
  gate.open();
  assert.equal((await call(caller, 'DELETE', `/${id}`)).status, 204);
}

function uploadsLeft(): string[] {
  return fs.existsSync(uploadDir) ? fs.readdirSync(uploadDir) : [];
}

/**
 * A multipart upload that sends its headers and the first bytes of the file, then waits: the
 * server sees a request whose body is still arriving. `answer` settles with the status if the
 * server answers before the body ends; `abort` drops the connection.
 */
function stalledUpload(caller: string) {
  const boundary = 'moodwireStalledUpload';
  const request = http.request(`${url}`, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked', ...auth(caller) },
  });
  const answer = new Promise<{ status: number; body: Record<string, any> }>((resolve, reject) => {
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, any> }));
    });
    request.on('error', reject);
  });
  request.write(`--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="slow.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
  request.write(fs.readFileSync(gray2s).subarray(0, 512));
  return {
    answer,
    abort() {
      answer.catch(() => undefined);
      request.destroy();
    },
  };
}

describe('jobs belong to their owner', () => {
  it('shows, lists, serves the timeline of and deletes a job only for its owner; others get the 404 of a missing job', async () => {
    const first = await upload('a', gray2s);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const second = await upload('a', gray2s, { name: 'second.mp4' });
    assert.equal(second.status, 202, JSON.stringify(second.body));
    const id = first.body.id as string;
    const missing = await call('b', 'GET', '/6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0009');

    for (const [method, suffix] of [['GET', `/${id}`], ['GET', `/${id}/timeline`], ['GET', `/${id}/timeline?format=csv`], ['DELETE', `/${id}`]] as const) {
      const other = await call('b', method, suffix);
      assert.equal(other.status, 404, `${method} ${suffix}`);
      assert.deepEqual(other.body, missing.body, 'same answer as a job that does not exist');
      assert.equal((await call(undefined, method, suffix)).status, 401, 'no key, no answer about the job');
    }
    assert.equal((await call('a', 'GET', `/${id}`)).body?.id, id, 'DELETE by another owner left it');
    assert.equal((await call('a', 'GET', `/${id}/timeline`)).status, 200);
    assert.equal(service.canRead(id, ownerOf('a')), true);
    assert.equal(service.canRead(id, ownerOf('b')), false);

    const listA = await call('a', 'GET', '');
    assert.equal(listA.status, 200);
    assert.deepEqual(videoJobListSchema.parse(listA.body), listA.body);
    assert.deepEqual(listA.body!.jobs.map((j: { id: string }) => j.id), [second.body.id, id], 'newest first');
    assert.equal(listA.body!.jobs[0].source.name, 'second.mp4');
    assert.deepEqual((await call('a', 'GET', '?limit=1')).body!.jobs.map((j: { id: string }) => j.id), [second.body.id]);
    assert.deepEqual((await call('b', 'GET', '')).body, { jobs: [] });
    assert.equal((await call(undefined, 'GET', '')).status, 401);
    const badLimit = await call('a', 'GET', '?limit=0');
    assert.equal(badLimit.status, 400);
    assert.equal(badLimit.body!.error.code, 'bad_request');

    await remove('a', id);
    await remove('a', second.body.id);
    assert.deepEqual((await call('a', 'GET', '')).body, { jobs: [] });
  });
});

describe('per-client limits', () => {
  it('refuses a third queued or running job of one client with 429 rate_limited; other clients are not affected', async () => {
    gate.hold();
    const one = await upload('a', gray2s);
    const two = await upload('a', gray2s);
    assert.equal(one.status, 202);
    assert.equal(two.status, 202);
    const third = await upload('a', gray2s);
    assert.equal(third.status, 429);
    assert.deepEqual(httpErrorSchema.parse(third.body), third.body);
    assert.equal(third.body.error.code, 'rate_limited');
    assert.match(third.body.error.message, /2 video job\(s\) queued or running/);
    const other = await upload('anon', gray2s);
    assert.equal(other.status, 202, 'another client has its own count');
    await remove('a', one.body.id);
    gate.hold();
    const again = await upload('a', gray2s);
    assert.equal(again.status, 202, 'a deleted job frees its place');
    for (const id of [two.body.id, again.body.id]) await remove('a', id);
    await remove('anon', other.body.id);
    assert.deepEqual(uploadsLeft(), []);
  });

  it('refuses a second upload arriving at once with 429 before reading its body, and frees the slot when an upload is aborted', async () => {
    const slow = stalledUpload('a');
    await sleep(300); // the first one holds the client's only slot
    const blocked = stalledUpload('a'); // its body never ends: only an answer before the body can arrive
    const refused = await Promise.race([blocked.answer, sleep(5000).then(() => ({ status: 0, body: {} as Record<string, any> }))]);
    blocked.abort();
    assert.equal(refused.status, 429, 'answered before the body arrived');
    assert.equal(refused.body.error.code, 'rate_limited');
    assert.match(refused.body.error.message, /1 upload\(s\) at once/);
    // Another client (other key, same address) has its own slots.
    const otherClient = await upload('b', gray2s);
    assert.equal(otherClient.status, 202);

    slow.abort();
    let after: { status: number; body: Record<string, any> } = { status: 0, body: {} };
    for (let i = 0; i < 50 && after.status !== 202; i += 1) {
      await sleep(100);
      after = await upload('a', gray2s);
      assert.ok(after.status === 202 || after.status === 429, JSON.stringify(after));
    }
    assert.equal(after.status, 202, 'the aborted upload gave its slot back');
    // Refusals give the slot back too: a bad file, then a good one.
    const text = path.join(media, 'notes.mp4');
    fs.writeFileSync(text, 'not a video\n'.repeat(10));
    assert.equal((await upload('a', text)).status, 415);
    const last = await upload('a', gray2s);
    assert.equal(last.status, 202, JSON.stringify(last.body));
    for (const id of [after.body.id, last.body.id]) await remove('a', id);
    await remove('b', otherClient.body.id);
    await sleep(200);
    assert.deepEqual(uploadsLeft(), [], 'no part of the aborted upload is left');
  });
});

describe('caps', () => {
  it('refuses a 16x16 ten-hour video with 413 video_too_long naming the limit, and deletes it', async () => {
    const long = makeGrayVideo(path.join(media, 'ten-hours.mp4'), 36_000, 0.1, 16);
    assert.ok(fs.statSync(long).size < 200_000);
    const { status, body } = await upload('a', long);
    assert.equal(status, 413);
    assert.deepEqual(httpErrorSchema.parse(body), body);
    assert.equal(body.error.code, 'video_too_long');
    assert.equal(body.error.message, 'the video lasts 36000 s, longer than the 10800 s a job may take (VIDEO_MAX_DURATION_SEC)');
    assert.deepEqual(uploadsLeft(), []);
  });

  it('refuses a video whose duration times the sampled fps exceeds VIDEO_MAX_FRAMES_PER_JOB, accepts it at a lower fps', async () => {
    const twenty = makeGrayVideo(path.join(media, 'gray20s.mp4'), 20);
    const { status, body } = await upload('a', twenty, { fps: 1 });
    assert.equal(status, 413);
    assert.equal(body.error.code, 'video_too_long');
    assert.match(body.error.message, /20 frames analysed at 1 frames\/s, more than the 10 a job may take \(VIDEO_MAX_FRAMES_PER_JOB\): send at most 10 s/);
    assert.deepEqual(uploadsLeft(), []);
    const slower = await upload('a', twenty, { fps: 0.5 });
    assert.equal(slower.status, 202, JSON.stringify(slower.body));
    await remove('a', slower.body.id);
  });
});

describe('no server path in a refusal', () => {
  const forbidden = [uploadDir, dataDir, os.tmpdir(), '/etc'];

  for (const [name, text] of [
    ['an absolute one', "ffconcat version 1.0\nfile '/etc/passwd'\n"],
    ['a relative one (resolved inside the upload dir)', "ffconcat version 1.0\nfile 'missing.mp4'\n"],
  ] as const) {
    it(`answers 415 to an ffconcat list naming ${name}, uploaded as x.mp4, without any path`, async () => {
      const file = path.join(media, 'x.mp4');
      fs.writeFileSync(file, text);
      const { status, body } = await upload('a', file);
      assert.equal(status, 415, JSON.stringify(body));
      assert.equal(body.error.code, 'unsupported_media_type');
      assert.match(body.error.message, /refers to other files/);
      const raw = JSON.stringify(body);
      for (const p of forbidden) assert.ok(!raw.includes(p), `${raw} holds ${p}`);
      assert.deepEqual(uploadsLeft(), []);
    });
  }
});
