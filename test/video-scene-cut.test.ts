/**
 * Video jobs end every track at a scene cut (issue 21, item 3): groups-pan.mp4 (three 4 s shots of
 * different groups, cuts at 4 s and 8 s) through the real server (port 0, real ffmpeg, real
 * inference) at 5 samples a second. Every track's samples lie within one shot; with the cut
 * check off (SCENE_CUT_THRESHOLD=255, which no thumbnail difference exceeds) tracks do join the
 * people of two shots, so the check is what keeps them apart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VideoTimeline } from '../contract/http.ts';
import { startTestServer } from './live-support.ts';
import { analyseGroupsPan } from './video-support.ts';

const FPS = 5;
/** groups-pan.mp4: shots of 4 s; at 5 fps the samples at 4.0 s and 8.0 s are the first of shots 2 and 3. */
const SHOT_SEC = 4;
const shotOf = (t: number): number => Math.floor(t / SHOT_SEC + 1e-6);

async function analyseVideo(env: Record<string, string>): Promise<VideoTimeline> {
  const server = await startTestServer(env);
  try {
    await server.ready;
    return await analyseGroupsPan(server.url, FPS, 240_000);
  } finally {
    await server.close();
  }
}

/** The tracks whose samples lie in more than one shot, as `#id: shots`. */
function spanningTracks(timeline: VideoTimeline): string[] {
  return timeline.tracks
    .map((track) => ({ id: track.trackId, shots: [...new Set(track.samples.map((s) => shotOf(s.t)))] }))
    .filter((track) => track.shots.length > 1)
    .map((track) => `#${track.id}: shots ${track.shots.map((shot) => shot + 1).join('+')}`);
}

/** Number of tracks with samples in each shot. */
function tracksPerShot(timeline: VideoTimeline): number[] {
  return [0, 1, 2].map((shot) => timeline.tracks.filter((track) => track.samples.some((s) => shotOf(s.t) === shot)).length);
}

describe('video jobs at scene cuts', { timeout: 600_000 }, () => {
  it('groups-pan.mp4 at 5 fps: no track spans a cut', async (t) => {
    const timeline = await analyseVideo({});
    assert.equal(timeline.frames.length, 12 * FPS);
    const spanning = spanningTracks(timeline);
    const perShot = tracksPerShot(timeline);
    t.diagnostic(`groups-pan.mp4 at ${FPS} fps: ${timeline.tracks.length} tracks, per shot ${perShot.join('/')} (the shots show 3, 4 and 4 people, some cut by the frame edge)`);
    assert.deepEqual(spanning, [], 'tracks that continue across a cut');
    // Each shot's people get tracks of their own, and faces are not split into many tracks.
    assert.ok(perShot.every((n) => n >= 2), `tracks per shot: ${perShot.join('/')}`);
    assert.ok(timeline.tracks.length <= 11, `${timeline.tracks.length} tracks`);
  });

  it('with the cut check off (SCENE_CUT_THRESHOLD=255) tracks do join people of two shots', async (t) => {
    const timeline = await analyseVideo({ SCENE_CUT_THRESHOLD: '255' });
    const spanning = spanningTracks(timeline);
    t.diagnostic(`without cut detection: ${timeline.tracks.length} tracks, spanning a cut: ${spanning.join(', ') || 'none'}`);
    assert.ok(spanning.length > 0, 'no track spanned a cut even without the check: the clip no longer tests it');
  });
});
