/**
 * What the video service does with its rows and files when it starts and while it runs: jobs out
 * of attempts are failed instead of resumed, uploads no job refers to are deleted (only files named
 * like the service's uploads), finished jobs past VIDEO_RETENTION_HOURS are deleted with their
 * samples and upload, and canRead answers by owner. Real SQLite, real ffmpeg, a stub analyzer.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig, type VideoConfig } from '../server/config.ts';
import { createVideoService, type VideoService } from '../server/video/service.ts';
import { type NewVideoJob, VideoJobStore } from '../server/video/store.ts';
import { ffmpegEnv, makeGrayVideo, stubAnalyzer, TEST_ANALYSIS } from './video-support.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  dataDir: string;
  uploadDir: string;
  dbFile: string;
  service(): VideoService;
}

/** A data dir with uploads in a separate VIDEO_UPLOAD_DIR, and a factory of services over it (env: extra settings). */
function setup(env: Record<string, string> = {}, video: Partial<VideoConfig> = {}): Setup {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-housekeeping-'));
  dirs.push(dataDir);
  const uploadDir = path.join(dataDir, 'elsewhere', 'uploads');
  const config = loadConfig({ ...ffmpegEnv(), MOODWIRE_DATA_DIR: dataDir, VIDEO_UPLOAD_DIR: uploadDir, ...env });
  assert.equal(config.video.uploadDir, uploadDir);
  fs.mkdirSync(uploadDir, { recursive: true });
  return {
    dataDir,
    uploadDir,
    dbFile: path.join(dataDir, 'video', 'jobs.sqlite'),
    service: () =>
      createVideoService({
        analyzer: stubAnalyzer(),
        config: { video: { ...config.video, ...video }, ffmpeg: config.ffmpeg, tracking: config.tracking },
        logger,
        describeAnalysis: () => TEST_ANALYSIS,
      }),
  };
}

/** A job row for a real 2-second video in the upload dir, named as the routes name uploads. */
function jobWithUpload(s: Setup, owner = 'local'): NewVideoJob {
  const id = randomUUID();
  const uploadPath = path.join(s.uploadDir, `${randomUUID()}.upload`);
  makeGrayVideo(`${uploadPath}.mp4`, 2);
  fs.renameSync(`${uploadPath}.mp4`, uploadPath);
  return { id, owner, clientKey: `addr:${owner}`, originalName: 'gray.mp4', uploadPath, sizeBytes: 1, durationSec: 2, sampledFps: 1, width: 64, height: 64 };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

function readJob(s: Setup, id: string) {
  const store = new VideoJobStore(s.dbFile);
  try {
    return { job: store.get(id), samples: store.samples(id).length };
  } finally {
    store.close();
  }
}

describe('video service start', () => {
  it('fails an interrupted job started VIDEO_MAX_ATTEMPTS times and resumes one with attempts left', async () => {
    const s = setup({ VIDEO_MAX_ATTEMPTS: '2' });
    const spent = jobWithUpload(s);
    const left = jobWithUpload(s);
    const store = new VideoJobStore(s.dbFile);
    store.create(spent);
    store.create(left);
    // Two crashes mid-job for one, one for the other: each start counted by markRunning.
    store.markRunning(spent.id, TEST_ANALYSIS);
    store.markQueued(spent.id);
    store.markRunning(spent.id, TEST_ANALYSIS);
    store.markRunning(left.id, TEST_ANALYSIS);
    assert.equal(store.get(spent.id)!.attempts, 2);
    store.close();

    const service = s.service();
    const events: string[] = [];
    service.events.on('progress', (e) => events.push(`${e.id}:${e.status}`));
    await service.start();
    try {
      await waitUntil('the resumed job is done', () => events.includes(`${left.id}:done`));
    } finally {
      await service.close();
    }
    const failed = readJob(s, spent.id).job!;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'interrupted 2 times (crash or restart mid-job); not run again');
    assert.equal(failed.attempts, 2, 'not started a third time');
    assert.ok(!fs.existsSync(spent.uploadPath), 'its upload is deleted');
    assert.ok(events.includes(`${spent.id}:failed`), 'subscribers hear it failed');
    const resumed = readJob(s, left.id);
    assert.equal(resumed.job!.status, 'done');
    assert.equal(resumed.job!.attempts, 2);
    assert.equal(resumed.samples, 2);
  });

  it('deletes uploads that no job refers to, and nothing else in the upload dir', async () => {
    const s = setup();
    const kept = jobWithUpload(s);
    const store = new VideoJobStore(s.dbFile);
    store.create(kept);
    store.markRunning(kept.id, TEST_ANALYSIS);
    store.markDone(kept.id); // a kept upload (VIDEO_KEEP_UPLOADS) of a finished job
    store.close();
    const orphans = [randomUUID(), randomUUID()].map((id) => path.join(s.uploadDir, `${id}.upload`));
    for (const file of orphans) fs.writeFileSync(file, 'half an upload');
    const foreign = ['notes.txt', `${randomUUID()}.upload.bak`, 'x.upload', `${randomUUID().toUpperCase()}.upload`];
    for (const name of foreign) fs.writeFileSync(path.join(s.uploadDir, name), 'not ours');
    const folder = path.join(s.uploadDir, `${randomUUID()}.upload`);
    fs.mkdirSync(folder);

    const service = s.service();
    await service.start();
    await service.close();
    const left = fs.readdirSync(s.uploadDir).sort();
    assert.deepEqual(left, [path.basename(kept.uploadPath), ...foreign, path.basename(folder)].sort());
    for (const file of orphans) assert.ok(!fs.existsSync(file));
  });

  it('answers canRead for the owner only, and false for unknown jobs or before start', async () => {
    const s = setup();
    const job = jobWithUpload(s, 'key:0123456789abcdef');
    const store = new VideoJobStore(s.dbFile);
    store.create(job);
    store.markRunning(job.id, TEST_ANALYSIS);
    store.markDone(job.id);
    store.close();
    const service = s.service();
    assert.equal(service.canRead(job.id, 'key:0123456789abcdef'), false, 'not started');
    await service.start();
    try {
      assert.equal(service.canRead(job.id, 'key:0123456789abcdef'), true);
      assert.equal(service.canRead(job.id, 'local'), false);
      assert.equal(service.canRead(randomUUID(), 'key:0123456789abcdef'), false);
    } finally {
      await service.close();
    }
  });
});

describe('a failed job\'s error', () => {
  it('names no server path when ffmpeg fails on a file list that got past the probe', async () => {
    const s = setup();
    const job = jobWithUpload(s);
    // As if an upload had slipped past the probe: ffmpeg itself reads the list at run time.
    fs.writeFileSync(job.uploadPath, `ffconcat version 1.0\nfile '/etc/passwd'\nfile '${path.join(s.uploadDir, 'other.upload')}'\n`);
    const store = new VideoJobStore(s.dbFile);
    store.create(job);
    store.close();
    const service = s.service();
    const events: Array<{ status: string; error?: string }> = [];
    service.events.on('progress', (e) => events.push(e));
    await service.start();
    try {
      await waitUntil('the job failed', () => events.some((e) => e.status === 'failed'));
    } finally {
      await service.close();
    }
    const failed = readJob(s, job.id).job!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /^ffmpeg failed while decoding: .*(\[path\]|input)/);
    for (const text of [failed.error!, JSON.stringify(events)]) {
      for (const p of ['/etc', s.uploadDir, s.dataDir, os.tmpdir()]) assert.ok(!text.includes(p), `${text} holds ${p}`);
    }
  });
});

describe('retention (VIDEO_RETENTION_HOURS)', () => {
  // 0.0004 h = 1.44 s: the setting accepts fractions of an hour.
  const env = { VIDEO_RETENTION_HOURS: '0.0004', VIDEO_KEEP_UPLOADS: 'true' };

  it('deletes finished jobs, their samples and kept upload once older than the retention, at start and while running; keeps running and recent ones', async () => {
    const s = setup(env);
    const old = jobWithUpload(s);
    const store = new VideoJobStore(s.dbFile);
    store.create(old);
    store.markRunning(old.id, TEST_ANALYSIS);
    store.addSample(old.id, { index: 0, t: 0, faces: [], skippedSmallFaces: 0 }, 0.5);
    store.markDone(old.id);
    store.close();
    await sleep(1600);

    const service = s.service();
    const events: string[] = [];
    service.events.on('progress', (e) => events.push(`${e.id}:${e.status}`));
    await service.start();
    try {
      assert.equal(service.canRead(old.id, 'local'), false, 'deleted at start');
      assert.ok(!fs.existsSync(old.uploadPath), 'with its kept upload');

      // A job that finishes now lives about 1.44 s, then the periodic sweep (every 1 s) deletes it.
      const fresh = jobWithUpload(s);
      const db = new VideoJobStore(s.dbFile);
      db.create(fresh);
      db.markRunning(fresh.id, TEST_ANALYSIS);
      db.addSample(fresh.id, { index: 0, t: 0, faces: [], skippedSmallFaces: 0 }, 0.5);
      db.markFailed(fresh.id, 'because');
      const stillRunning = jobWithUpload(s);
      db.create(stillRunning);
      db.markRunning(stillRunning.id, TEST_ANALYSIS); // running rows are never expired
      db.close();
      assert.equal(service.canRead(fresh.id, 'local'), true, 'kept while recent');
      const finishedAt = Date.now();
      await waitUntil('the finished job is deleted', () => !service.canRead(fresh.id, 'local'), 10_000);
      assert.ok(Date.now() - finishedAt >= 1400, 'not before the retention');
      assert.ok(!fs.existsSync(fresh.uploadPath));
      assert.deepEqual(readJob(s, fresh.id), { job: undefined, samples: 0 });
      assert.equal(service.canRead(stillRunning.id, 'local'), true);
    } finally {
      await service.close();
    }
  });

  it('keeps everything with VIDEO_RETENTION_HOURS=0', async () => {
    const s = setup({ VIDEO_RETENTION_HOURS: '0', VIDEO_KEEP_UPLOADS: 'true' });
    const old = jobWithUpload(s);
    const store = new VideoJobStore(s.dbFile);
    store.create(old);
    store.markRunning(old.id, TEST_ANALYSIS);
    store.markDone(old.id);
    store.close();
    await sleep(50);
    const service = s.service();
    await service.start();
    await service.close();
    assert.equal(readJob(s, old.id).job?.status, 'done');
    assert.ok(fs.existsSync(old.uploadPath));
  });
});
