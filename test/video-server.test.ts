/**
 * Video jobs run by the real server (startServer on port 0, real ffmpeg, real inference) use the
 * server's tracking settings: groups-pan.mp4 sampled once a second, with TRACK_MAX_AGE_MS=1 no
 * track survives from one sample to the next, with the default (1500 ms) tracks continue.
 * Also pins the single-image answer of the same server to its contract/http.ts schema.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { analyzeResultSchema, videoJobListSchema, type VideoTimeline } from '../contract/http.ts';
import type { RunningServer } from '../server/server.ts';
import { readPhoto, startTestServer } from './live-support.ts';
import { analyseGroupsPan, groupsPan, makeGrayVideo } from './video-support.ts';

const FPS = 1;

const analyseVideo = (server: RunningServer): Promise<VideoTimeline> => analyseGroupsPan(server.url, FPS, 60_000);

/** Tracks, face samples and the longest track of a timeline. */
function trackStats(timeline: VideoTimeline) {
  return {
    tracks: timeline.tracks.length,
    faceSamples: timeline.frames.reduce((n, f) => n + f.faceCount, 0),
    longest: Math.max(...timeline.tracks.map((t) => t.samples.length)),
  };
}

async function withServer<T>(env: Record<string, string>, run: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await startTestServer({ WORKERS: '1', ...env });
  try {
    await server.ready;
    return await run(server);
  } finally {
    await server.close();
  }
}

describe('video jobs on the real server', { timeout: 180_000 }, () => {
  it('honour TRACK_MAX_AGE_MS: 1 ms starts new tracks at every sample, the default continues them', async () => {
    const short = await withServer({ TRACK_MAX_AGE_MS: '1' }, async (server) => {
      const image = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', body: new Uint8Array(readPhoto('group1.jpg')), headers: { 'content-type': 'image/jpeg' } });
      assert.equal(image.status, 200);
      const answer: unknown = await image.json();
      assert.deepEqual(analyzeResultSchema.parse(answer), answer);
      return trackStats(await analyseVideo(server));
    });
    const standard = await withServer({}, async (server) => trackStats(await analyseVideo(server)));

    assert.ok(short.faceSamples >= 24, `faces found: ${JSON.stringify(short)}`);
    assert.equal(short.longest, 1, `a track outlived TRACK_MAX_AGE_MS=1: ${JSON.stringify(short)}`);
    assert.equal(short.tracks, short.faceSamples);
    assert.ok(standard.longest >= 4, `the default tracks did not continue: ${JSON.stringify(standard)}`);
    assert.ok(standard.tracks <= standard.faceSamples / 2, JSON.stringify({ short, standard }));
  });
});

describe('what a video result says about itself', { timeout: 180_000 }, () => {
  it('names the source, the model and the settings, counts faces too small to read, keeps a thumbnail per track when asked, and a summary CSV', async () => {
    // groups-pan's faces are 48-85 px at 640x360: MIN_FACE_SIZE=60 leaves some out, not all.
    await withServer({ MIN_FACE_SIZE: '60' }, async (server) => {
      const timeline = await analyseGroupsPan(server.url, FPS, 60_000, { thumbnails: true });
      assert.equal(timeline.source.name, 'groups-pan.mp4');
      assert.deepEqual(timeline.analysis, {
        modelVersion: server.inference()!.pool.modelVersion,
        detector: 'ssd',
        minFaceSize: 60,
        maxSidePx: 640,
        trackMaxAgeMs: 1500,
        smoothingTauMs: 400,
        sceneCutThreshold: 30,
      });
      assert.ok(timeline.skippedSmallFaces > 0, 'some faces were too small');
      assert.ok(timeline.tracks.length > 0, 'and some were not');
      assert.ok(timeline.tracks.every((t) => t.samples.every((s) => Math.min(s.box.width, s.box.height) >= 60)));
      assert.equal(timeline.frames.length, 12, 'samples without faces stay in the timeline');

      for (const track of timeline.tracks) {
        assert.equal(track.thumbnail, `/api/v1/videos/${timeline.id}/tracks/${track.trackId}/thumbnail`);
        const res = await fetch(`${server.url}${track.thumbnail}`);
        assert.equal(res.headers.get('content-type'), 'image/jpeg');
        const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 96, 96]);
      }
      const summary = await fetch(`${server.url}/api/v1/videos/${timeline.id}/timeline?format=summary-csv`);
      assert.match(summary.headers.get('content-disposition') ?? '', /filename="groups-pan\.emotions\.summary\.csv"/);
      const rows = (await summary.text()).trim().split('\n');
      assert.equal(rows.length, timeline.tracks.length + 1);
      assert.match(rows[0]!, /^track_id,first_t,last_t,time_on_screen_sec,samples,dominant,mean_angry,/);

      // Without the option no picture of anyone is kept.
      const plain = await analyseGroupsPan(server.url, FPS, 60_000);
      assert.ok(plain.tracks.every((t) => t.thumbnail === undefined));
      assert.equal((await fetch(`${server.url}/api/v1/videos/${plain.id}/tracks/1/thumbnail`)).status, 404);
    });
  });
});

describe('video settings of issue 20 on the real server', { timeout: 180_000 }, () => {
  it('writes uploads to VIDEO_UPLOAD_DIR, refuses a video over VIDEO_MAX_DURATION_SEC with 413, lists the caller\'s jobs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-upload-dir-'));
    const uploadDir = path.join(dir, 'uploads');
    try {
      const gray = makeGrayVideo(path.join(dir, 'gray.mp4'), 2);
      await withServer({ VIDEO_UPLOAD_DIR: uploadDir, VIDEO_MAX_DURATION_SEC: '5', VIDEO_KEEP_UPLOADS: 'true' }, async (server) => {
        const videos = `${server.url}/api/v1/videos`;
        const post = async (file: string) => {
          const form = new FormData();
          form.append('video', new Blob([fs.readFileSync(file)]), path.basename(file));
          const response = await fetch(`${videos}?fps=1`, { method: 'POST', body: form });
          return { status: response.status, body: (await response.json()) as Record<string, any> };
        };
        const long = await post(groupsPan); // 12 s
        assert.equal(long.status, 413);
        assert.equal(long.body.error.code, 'video_too_long');
        assert.match(long.body.error.message, /lasts 12 s, longer than the 5 s a job may take/);
        assert.deepEqual(fs.readdirSync(uploadDir), [], 'the refused upload is deleted');

        const accepted = await post(gray);
        assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
        for (let i = 0; ; i += 1) {
          const job = (await (await fetch(`${videos}/${accepted.body.id}`)).json()) as { status: string };
          if (job.status === 'done') break;
          assert.ok(job.status !== 'failed' && i < 300, JSON.stringify(job));
          await sleep(200);
        }
        const kept = fs.readdirSync(uploadDir);
        assert.equal(kept.length, 1, 'the kept upload is in VIDEO_UPLOAD_DIR');
        assert.match(kept[0]!, /^[0-9a-f-]{36}\.upload$/);
        const list: unknown = await (await fetch(videos)).json();
        assert.deepEqual(videoJobListSchema.parse(list), list);
        assert.deepEqual((list as { jobs: Array<{ id: string }> }).jobs.map((j) => j.id), [accepted.body.id]);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
