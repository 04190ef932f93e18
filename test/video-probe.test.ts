import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../contract/errors.ts';
import { findOnPath, resolveFfmpegBinaries } from '../server/video/binaries.ts';
import { probeVideo } from '../server/video/probe.ts';
import { type BadFiles, groupsPan, makeBadFiles } from './video-support.ts';

let bad: BadFiles;
before(() => {
  bad = makeBadFiles();
});
after(() => fs.rmSync(bad.dir, { recursive: true, force: true }));

const flavours = [
  { name: 'system ffmpeg', binaries: () => resolveFfmpegBinaries() },
  { name: 'npm-shipped ffmpeg', binaries: () => resolveFfmpegBinaries({ preferNpm: true }) },
];

describe('ffmpeg binaries', () => {
  it('falls back to the npm-shipped binaries when none is on PATH', () => {
    const npm = resolveFfmpegBinaries({ preferNpm: true, env: {} });
    assert.deepEqual(npm.origin, { ffmpeg: 'npm', ffprobe: 'npm' });
    assert.match(npm.ffmpegPath, /@ffmpeg-installer/);
    assert.match(npm.ffprobePath, /@ffprobe-installer/);
    const noPath = resolveFfmpegBinaries({ env: { PATH: '/nonexistent' } });
    assert.deepEqual(noPath.origin, { ffmpeg: 'npm', ffprobe: 'npm' });
    assert.equal(findOnPath('ffmpeg', '/nonexistent'), undefined);
  });

  it('honours FFMPEG_PATH and FFPROBE_PATH', () => {
    const b = resolveFfmpegBinaries({ env: { FFMPEG_PATH: '/opt/x/ffmpeg', FFPROBE_PATH: '/opt/x/ffprobe' } });
    assert.deepEqual(b, { ffmpegPath: '/opt/x/ffmpeg', ffprobePath: '/opt/x/ffprobe', origin: { ffmpeg: 'env', ffprobe: 'env' } });
  });
});

for (const flavour of flavours) {
  describe(`probeVideo with the ${flavour.name}`, () => {
    it('reads size, duration and rate of the real video', async () => {
      const probe = await probeVideo(groupsPan, flavour.binaries());
      assert.equal(probe.width, 640);
      assert.equal(probe.height, 360);
      assert.ok(Math.abs(probe.durationSec - 12) < 0.1, `duration ${probe.durationSec}`);
      assert.equal(probe.frameRate, 15);
      assert.equal(probe.codec, 'h264');
    });

    const expectations = [
      { file: () => bad.text, code: 'unsupported_media_type', status: 415, message: /not a video file/ },
      { file: () => bad.audioOnly, code: 'unsupported_media_type', status: 415, message: /no video stream \(only audio\)/ },
      { file: () => bad.truncated, code: 'undecodable_video', status: 422, message: /truncated or corrupt/ },
      { file: () => bad.empty, code: 'undecodable_video', status: 422, message: /empty \(0 bytes\)/ },
    ] as const;
    for (const expected of expectations) {
      it(`refuses ${expected.code} ${String(expected.message)}`, async () => {
        const file = expected.file();
        await assert.rejects(probeVideo(file, flavour.binaries()), (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, expected.code);
          assert.equal(error.httpStatus, expected.status);
          assert.match(error.message, expected.message);
          assert.ok(!error.message.includes(bad.dir), 'the message must not reveal server paths');
          return true;
        });
      });
    }
  });
}
