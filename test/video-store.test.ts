import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EMOTIONS, type EmotionScores } from '../contract/emotions.ts';
import type { Face } from '../contract/socket.ts';
import { JobQueue } from '../server/video/jobs.ts';
import { VideoJobStore, type VideoSample } from '../server/video/store.ts';
import { buildTimeline, CSV_COLUMNS, timelineToCsv } from '../server/video/timeline.ts';

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
    store.markRunning(id);
    store.addSample(id, { index: 0, t: 0, faces: [face(1, 10, 'happy')] }, 0.25);
    store.addSample(id, { index: 1, t: 0.5, faces: [] }, 0.5);
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
    store.markRunning(id);
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

describe('timeline', () => {
  const id = '6f1c1c56-8f4e-4d0e-9a39-5a8f1b7e0002';
  const store = new VideoJobStore(path.join(dir, 'timeline.sqlite'));
  after(() => store.close());
  store.create(newJob(id));
  const samples: VideoSample[] = [
    { index: 0, t: 0, faces: [face(1, 10, 'happy'), face(2, 300, 'sad')] },
    { index: 1, t: 0.5, faces: [face(1, 12, 'happy'), face(2, 302, 'sad')] },
    { index: 2, t: 1, faces: [] },
    { index: 3, t: 1.5, faces: [face(1, 14, 'surprise')] },
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
