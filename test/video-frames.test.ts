import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { analysisSize, decodeFrames } from '../server/video/frames.ts';
import { childFfmpegProcesses, groupsPan, testBinaries } from './video-support.ts';

function meanByte(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 97) sum += data[i]!;
  return sum / Math.ceil(data.length / 97);
}

describe('analysisSize', () => {
  it('keeps small frames and scales large ones to the max side, even sizes, same aspect', () => {
    assert.deepEqual(analysisSize(640, 360, 640), { width: 640, height: 360 });
    assert.deepEqual(analysisSize(1920, 1080, 640), { width: 640, height: 360 });
    assert.deepEqual(analysisSize(1080, 1920, 640), { width: 360, height: 640 });
    assert.deepEqual(analysisSize(641, 361, 1000), { width: 642, height: 362 });
  });
});

for (const flavour of ['system', 'npm'] as const) {
  describe(`decodeFrames with the ${flavour} ffmpeg`, () => {
    const binaries = testBinaries(flavour === 'npm' ? 'npm' : 'configured');

    it('pipes 5 fps raw RGB frames of the 12 s video with media timestamps', async () => {
      const frames = [];
      for await (const f of decodeFrames(groupsPan, { binaries, fps: 5, width: 320, height: 180 })) {
        frames.push({ index: f.index, t: f.timeSec, bytes: f.frame.data.length, w: f.frame.width, h: f.frame.height, mean: meanByte(f.frame.data) });
      }
      assert.equal(frames.length, 60);
      frames.forEach((f, i) => {
        assert.equal(f.index, i);
        assert.ok(Math.abs(f.t - i / 5) < 1e-9);
        assert.equal(f.bytes, 320 * 180 * 3);
        assert.equal(f.w, 320);
        assert.equal(f.h, 180);
        assert.ok(f.mean > 10 && f.mean < 245, `frame ${i} looks blank (mean ${f.mean})`);
      });
      // A zoom over three photos: the picture changes over time.
      assert.notEqual(frames[0]!.mean.toFixed(2), frames[30]!.mean.toFixed(2));
      assert.deepEqual(childFfmpegProcesses(), []);
    });

    it('kills ffmpeg when aborted or when the consumer stops early', async () => {
      const controller = new AbortController();
      let seen = 0;
      await assert.rejects(async () => {
        for await (const _ of decodeFrames(groupsPan, { binaries, fps: 5, width: 640, height: 360, signal: controller.signal })) {
          seen += 1;
          if (seen === 2) controller.abort(new Error('stop now'));
        }
      }, /stop now/);
      assert.equal(seen, 2, 'no frame after the abort, even one already in the pipe');

      let taken = 0;
      for await (const _ of decodeFrames(groupsPan, { binaries, fps: 15, width: 640, height: 360 })) {
        if (++taken === 3) break;
      }
      await sleep(100);
      assert.deepEqual(childFfmpegProcesses(), []);
    });

    it('applies backpressure: a stalled consumer keeps ffmpeg from racing ahead', async () => {
      // 180 frames of 640x360 RGB are ~124 MB; a stalled reader must hold only a pipe's worth.
      const before = process.memoryUsage().arrayBuffers;
      const iterator = decodeFrames(groupsPan, { binaries, fps: 15, width: 640, height: 360 });
      const first = await iterator.next();
      assert.equal(first.done, false);
      await sleep(1500);
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 30 * 1024 * 1024, `buffered ${Math.round(grown / 1e6)} MB while stalled`);
      let rest = 0;
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest += 1;
      assert.equal(rest + 1, 180);
    });
  });
}
