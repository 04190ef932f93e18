import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { EMOTIONS, type EmotionScores } from '../contract/emotions.ts';
import type { Face } from '../contract/socket.ts';
import { JobQueue } from '../server/video/jobs.ts';
import { UploadSlots } from '../server/video/upload-slots.ts';
import { VideoJobStore, type VideoSample } from '../server/video/store.ts';
import { buildTimeline, CSV_COLUMNS, timelineToCsv } from '../server/video/timeline.ts';
import { TEST_ANALYSIS } from './video-support.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-store-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function scores(top: (typeof EMOTIONS)[number], p = 0.7): EmotionScores {
  const rest = (1 - p) / (EMOTIONS.length - 1);
  return Object.fromEntries(EMOTIONS.map((e) => [e, e === top ? p : rest])) as EmotionScores;
}

function face(trackId: number, x: number, top: (typeof EMOTIONS)[number]): Face {
  return { trackId, box: { x, y: 50, width: 80, height: 90 }, score: 0.9, emotions: scores(top), dominant: top, smoothed: scores(top, 0.6), origin: 'detection', uncertain: false };
}

const newJob = (id: string, owner = 'local') => ({
  id,
  owner,
  clientKey: `addr:${owner}`,
  originalName: 'clip.mp4',
  uploadPath: path.join(dir, `${id}.upload`),
  sizeBytes: 1234,
  durationSec: 2,
  sampledFps: 2,
  width: 640,
  height: 360,
});

describe('VideoJobStore', () => {
  it('persists jobs and samples across a reopen, and restarts a job from scratch', () => {
    const file = path.join(dir, 'jobs.sqlite');
    const id = '6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0001';
    let store = new VideoJobStore(file);
    assert.equal(store.create(newJob(id)).status, 'queued');
    store.markRunning(id, TEST_ANALYSIS);
    store.addSample(id, { index: 0, t: 0, faces: [face(1, 10, 'happy')], skippedSmallFaces: 0 }, 0.25);
    store.addSample(id, { index: 1, t: 0.5, faces: [], skippedSmallFaces: 0 }, 0.5);
    store.close();

    store = new VideoJobStore(file);
    const job = store.get(id)!;
    assert.equal(job.status, 'running');
    assert.equal(job.progress, 0.5);
    assert.equal(job.framesAnalyzed, 2);
    assert.equal(job.attempts, 1);
    assert.deepEqual(store.withStatus('running').map((j) => j.id), [id]);
    assert.deepEqual(store.samples(id)[0]!.faces[0], face(1, 10, 'happy'));

    store.markQueued(id);
    assert.equal(store.samples(id).length, 0, 'an interrupted attempt leaves no partial samples');
    store.markRunning(id, TEST_ANALYSIS);
    assert.equal(store.get(id)!.attempts, 2);
    store.markFailed(id, 'because');
    assert.equal(store.get(id)!.error, 'because');
    store.markUploadDeleted(id);
    assert.equal(store.get(id)!.uploadPath, null);
    assert.equal(store.delete(id), true);
    assert.equal(store.get(id), undefined);
    assert.equal(store.delete(id), false);
    store.close();
  });
});

describe('VideoJobStore owners and queries', () => {
  it('migrates a database from before owners: its jobs belong to local, attempts start at 0', () => {
    const file = path.join(dir, 'old.sqlite');
    const old = new Database(file);
    // The first release's table: no owner, client_key or attempts column.
    old.exec(`CREATE TABLE video_jobs (
      id TEXT PRIMARY KEY, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, original_name TEXT NOT NULL,
      upload_path TEXT, size_bytes INTEGER NOT NULL, duration_sec REAL NOT NULL, sampled_fps REAL NOT NULL,
      width INTEGER NOT NULL, height INTEGER NOT NULL, frames_analyzed INTEGER NOT NULL DEFAULT 0, error TEXT,
      created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
    old.prepare(`INSERT INTO video_jobs (id, status, original_name, size_bytes, duration_sec, sampled_fps, width, height, created_at, updated_at)
      VALUES ('6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0010', 'done', 'old.mp4', 1, 1, 1, 2, 2, '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')`).run();
    old.close();

    const store = new VideoJobStore(file);
    const job = store.get('6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0010')!;
    assert.equal(job.owner, 'local');
    assert.equal(job.attempts, 0);
    assert.deepEqual(store.ofOwner('local', 10).map((j) => j.id), [job.id]);
    store.markRunning(job.id, TEST_ANALYSIS);
    assert.equal(store.get(job.id)!.attempts, 1);
    store.close();
    // A second open finds the columns there and changes nothing.
    const again = new VideoJobStore(file);
    assert.equal(again.get(job.id)!.owner, 'local');
    again.close();
  });

  it('lists an owner\'s jobs newest first, counts a client\'s queued and running jobs, finds expired jobs and referenced uploads', async () => {
    const store = new VideoJobStore(path.join(dir, 'owners.sqlite'));
    const ids = ['a', 'b', 'c', 'd'].map((c) => `6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e00${c}${c}`);
    for (const [i, id] of ids.entries()) {
      store.create(newJob(id, i === 3 ? 'key:other' : 'key:mine'));
      await new Promise((r) => setTimeout(r, 5)); // distinct created_at
    }
    assert.deepEqual(store.ofOwner('key:mine', 10).map((j) => j.id), [ids[2], ids[1], ids[0]]);
    assert.deepEqual(store.ofOwner('key:mine', 2).map((j) => j.id), [ids[2], ids[1]]);
    assert.deepEqual(store.ofOwner('key:other', 10).map((j) => j.id), [ids[3]]);
    assert.equal(store.activeCount('addr:key:mine'), 3);
    store.markRunning(ids[0]!, TEST_ANALYSIS);
    store.markDone(ids[1]!);
    store.markFailed(ids[2]!, 'x');
    assert.equal(store.activeCount('addr:key:mine'), 1, 'done and failed jobs do not count');
    assert.equal(store.activeCount('addr:key:other'), 1);
    assert.deepEqual(store.finishedBefore(new Date(Date.now() - 60_000)), []);
    assert.deepEqual(store.finishedBefore(new Date(Date.now() + 1)).map((j) => j.id), [ids[1], ids[2]]);
    store.markUploadDeleted(ids[1]!);
    assert.deepEqual([...store.uploadPaths()].sort(), [ids[0], ids[2], ids[3]].map((id) => path.join(dir, `${id}.upload`)).sort());
    store.close();
  });
});

describe('timeline', () => {
  const id = '6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0002';
  const store = new VideoJobStore(path.join(dir, 'timeline.sqlite'));
  after(() => store.close());
  store.create(newJob(id));
  const samples: VideoSample[] = [
    { index: 0, t: 0, faces: [face(1, 10, 'happy'), face(2, 300, 'sad')], skippedSmallFaces: 0 },
    { index: 1, t: 0.5, faces: [face(1, 12, 'happy'), face(2, 302, 'sad')], skippedSmallFaces: 0 },
    { index: 2, t: 1, faces: [], skippedSmallFaces: 0 },
    { index: 3, t: 1.5, faces: [face(1, 14, 'surprise')], skippedSmallFaces: 0 },
  ];
  for (const s of samples) store.addSample(id, s, (s.index + 1) / 4);
  store.markDone(id);

  it('groups samples per track with a summary', () => {
    const timeline = buildTimeline(store.get(id)!, store.samples(id));
    assert.equal(timeline.complete, true);
    assert.deepEqual(timeline.frames.map((f) => f.faceCount), [2, 2, 0, 1]);
    assert.deepEqual(timeline.tracks.map((t) => t.trackId), [1, 2]);
    const [one, two] = timeline.tracks;
    assert.equal(one!.samples.length, 3);
    assert.deepEqual(one!.samples.map((s) => s.t), [0, 0.5, 1.5]);
    assert.equal(one!.summary.timeOnScreenSec, 1.5);
    assert.equal(one!.summary.firstT, 0);
    assert.equal(one!.summary.lastT, 1.5);
    assert.ok(Math.abs(one!.summary.dominantShare.happy - 2 / 3) < 1e-3);
    assert.ok(Math.abs(one!.summary.dominantShare.surprise - 1 / 3) < 1e-3);
    assert.equal(one!.summary.dominant, 'happy');
    const meanSum = EMOTIONS.reduce((n, e) => n + one!.summary.meanEmotions[e], 0);
    assert.ok(Math.abs(meanSum - 1) < 1e-3);
    assert.equal(two!.summary.timeOnScreenSec, 1);
    assert.equal(two!.summary.dominant, 'sad');
  });

  it('writes one CSV row per track and sample', () => {
    const csv = timelineToCsv(buildTimeline(store.get(id)!, store.samples(id)));
    const lines = csv.trim().split('\n');
    assert.equal(lines[0], CSV_COLUMNS.join(','));
    assert.equal(lines.length, 1 + 5);
    const first = lines[1]!.split(',');
    assert.equal(first.length, CSV_COLUMNS.length);
    assert.deepEqual(first.slice(0, 8), ['1', '0', '10', '50', '80', '90', '0.9', 'happy']);
    assert.equal(Number(first[8 + EMOTIONS.indexOf('happy')]), 0.7);
    assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), ['1', '1', '1', '2', '2']);
  });
});

describe('JobQueue', () => {
  it('runs at most `concurrency` jobs, bounds the wait list and stops jobs on cancel/close', async () => {
    const started: string[] = [];
    const stops: string[] = [];
    const queue = new JobQueue({
      concurrency: 1,
      maxQueued: 1,
      run: (id, signal) =>
        new Promise<void>((resolve) => {
          started.push(id);
          signal.addEventListener('abort', () => {
            stops.push(`${id}:${(signal.reason as { reason: string }).reason}`);
            resolve();
          });
        }),
    });
    queue.enqueue('a');
    queue.enqueue('b');
    assert.equal(queue.hasRoom(), false);
    assert.throws(() => queue.enqueue('c'), { code: 'queue_full' });
    queue.enqueue('c', { force: true });
    assert.deepEqual(started, ['a']);
    await queue.cancel('a');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, ['a', 'b']);
    await queue.cancel('c'); // waiting: removed without running
    await queue.close();
    assert.deepEqual(started, ['a', 'b']);
    assert.deepEqual(stops, ['a:deleted', 'b:shutdown']);
    assert.throws(() => queue.enqueue('d'), { code: 'not_ready' });
  });
});

describe('UploadSlots', () => {
  it('gives each client at most its slots, releases once per slot, and forgets clients at zero', () => {
    const slots = new UploadSlots(2);
    const a1 = slots.acquire('a')!;
    const a2 = slots.acquire('a')!;
    assert.equal(slots.acquire('a'), undefined, 'a third at once is refused');
    const b1 = slots.acquire('b')!;
    assert.equal(slots.clients, 2);
    a1();
    a1(); // a second release of the same slot changes nothing
    assert.equal(slots.inUse('a'), 1);
    assert.ok(slots.acquire('a'), 'a freed slot can be taken again');
    a2();
    b1();
    assert.equal(slots.inUse('b'), 0);
    assert.equal(slots.clients, 1, 'b is forgotten at zero; a still holds the slot taken after the release');
  });
});
