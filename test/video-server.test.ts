/**
 * Video jobs run by the real server (startServer on port 0, real ffmpeg, real inference) use the
 * server's tracking settings: groups-pan.mp4 sampled once a second, with TRACK_MAX_AGE_MS=1 no
 * track survives from one sample to the next, with the default (1500 ms) tracks continue.
 * Also pins the single-image answer of the same server to its contract/http.ts schema.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeResultSchema, type VideoTimeline } from '../contract/http.ts';
import type { RunningServer } from '../server/server.ts';
import { readPhoto, startTestServer } from './live-support.ts';
import { analyseGroupsPan } from './video-support.ts';

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
