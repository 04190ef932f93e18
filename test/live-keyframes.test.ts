/** Keyframe scheduling, the scene-cut signal and the per-stream state, without a server. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { LiveStream } from '../server/live/stream.ts';
import { KeyframeSchedule } from '../server/pipeline/keyframes.ts';
import { greyThumbnail, thumbnailDifference } from '../server/pipeline/scene-cut.ts';
import type { ClassifiedFace, FrameAnalysis, RgbFrame } from '../server/pipeline/types.ts';
import { mediaDir } from './live-support.ts';

async function rgb(file: string, transform?: (image: sharp.Sharp) => sharp.Sharp): Promise<RgbFrame> {
  const image = sharp(path.join(mediaDir, file)).removeAlpha();
  const { data, info } = await (transform ? transform(image) : image).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

describe('KeyframeSchedule', () => {
  it('detects on the first frame, then every intervalFrames frames', () => {
    const schedule = new KeyframeSchedule({ intervalFrames: 3, intervalMs: 60_000 }, 0);
    const due: boolean[] = [];
    for (let frame = 0; frame < 7; frame++) {
      const keyframe = schedule.due(frame * 10, 1);
      due.push(keyframe);
      schedule.record(keyframe, frame * 10);
    }
    assert.deepEqual(due, [true, false, false, true, false, false, true]);
  });

  it('detects when intervalMs passed, whatever the frame count', () => {
    const schedule = new KeyframeSchedule({ intervalFrames: 100, intervalMs: 1000 }, 0);
    schedule.record(schedule.due(0, 1), 0);
    assert.equal(schedule.due(999, 1), false);
    schedule.record(false, 999);
    assert.equal(schedule.due(1000, 1), true);
  });

  it('detects whenever there is nothing to track, and counts a worker-made keyframe (lost face, cut) as one', () => {
    const schedule = new KeyframeSchedule({ intervalFrames: 5, intervalMs: 60_000 }, 0);
    schedule.record(true, 0);
    assert.equal(schedule.due(10, 0), true, 'no faces to follow');
    assert.equal(schedule.due(10, 2), false);
    schedule.record(false, 10);
    schedule.record(true, 20); // the worker lost a face and detected: the next 4 frames are tracked
    for (let i = 0; i < 4; i++) {
      assert.equal(schedule.due(30 + i, 2), false);
      schedule.record(false, 30 + i);
    }
    assert.equal(schedule.due(40, 2), true);
  });

  it('starts streams at different points of the interval, so their keyframes do not line up', () => {
    const keyframesAt = (phase: number): number[] => {
      const schedule = new KeyframeSchedule({ intervalFrames: 10, intervalMs: 60_000 }, phase);
      const at: number[] = [];
      for (let frame = 0; frame < 25; frame++) {
        const keyframe = schedule.due(frame, 1);
        if (keyframe) at.push(frame);
        schedule.record(keyframe, frame);
      }
      return at;
    };
    assert.deepEqual(keyframesAt(0), [0, 10, 20]);
    assert.deepEqual(keyframesAt(0.5), [0, 5, 15]);
    assert.deepEqual(keyframesAt(0.9), [0, 1, 11, 21]);
  });

  it('refuses an interval below one frame', () => {
    assert.throws(() => new KeyframeSchedule({ intervalFrames: 0, intervalMs: 1000 }));
  });
});

describe('scene-cut signal', () => {
  it('stays small under camera motion and jumps at a cut (threshold 30 in between)', async () => {
    const a = await rgb('group1.jpg');
    const zoomed = await rgb('group1.jpg', (image) => image.extract({ left: 20, top: 12, width: 1240, height: 829 }).resize(1280, 853));
    const other = await rgb('group4.jpg');
    const same = thumbnailDifference(greyThumbnail(a), greyThumbnail(a));
    const motion = thumbnailDifference(greyThumbnail(a), greyThumbnail(zoomed));
    const cut = thumbnailDifference(greyThumbnail(a), greyThumbnail(other));
    assert.equal(same, 0);
    assert.ok(motion < 15, `motion ${motion.toFixed(1)}`);
    assert.ok(cut > 30, `cut ${cut.toFixed(1)}`);
  });

  it('compares frames of different sizes by their thumbnails', async () => {
    const big = await rgb('group1.jpg');
    const small = await rgb('group1.jpg', (image) => image.resize(320));
    assert.ok(thumbnailDifference(greyThumbnail(big), greyThumbnail(small)) < 5);
  });
});

describe('LiveStream', () => {
  const face = (x: number): ClassifiedFace => ({
    box: { x, y: 10, width: 40, height: 50 },
    region: { x: x + 2, y: 14, width: 36, height: 36 },
    score: 0.9,
    points: { leftEye: [x + 12, 28], rightEye: [x + 28, 28], mouth: [x + 20, 45] },
    emotions: { angry: 0, disgust: 0, fear: 0, happy: 1, sad: 0, surprise: 0, neutral: 0 },
    origin: 'detection',
  });
  const analysis = (faces: ClassifiedFace[], keyframe: FrameAnalysis['keyframe']): FrameAnalysis => ({
    width: 320,
    height: 240,
    skippedSmallFaces: 0,
    faces,
    timings: {},
    keyframe,
    thumbnail: new Uint8Array(1024),
  });

  it('follows the regions of the last answer and asks for a keyframe on schedule', () => {
    const stream = new LiveStream({ intervalFrames: 2, intervalMs: 60_000 }, 0);
    const first = stream.context(0);
    assert.equal(first.keyframeDue, true);
    assert.equal(first.thumbnail, undefined);
    stream.record(analysis([face(10), face(100)], 'planned'), 0);
    const second = stream.context(10);
    assert.equal(second.keyframeDue, false);
    assert.deepEqual(second.follow.map((f) => f.region.x), [12, 102]);
    assert.ok(second.thumbnail);
    stream.record(analysis([face(11)], undefined), 10);
    assert.equal(stream.context(20).keyframeDue, true);
    stream.record(analysis([], 'planned'), 20);
    assert.equal(stream.context(30).keyframeDue, true, 'nothing to follow');
  });
});
