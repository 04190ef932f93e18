import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../contract/errors.ts';
import { loadConfig } from '../server/config.ts';
import { findOnPath, resolveFfmpegBinaries } from '../server/video/binaries.ts';
import { probeVideo } from '../server/video/probe.ts';
import { type BadFiles, groupsPan, makeBadFiles, repoRoot, testBinaries } from './video-support.ts';

let bad: BadFiles;
before(() => {
  bad = makeBadFiles();
});
after(() => fs.rmSync(bad.dir, { recursive: true, force: true }));

const flavours = [
  { name: 'system ffmpeg', binaries: () => testBinaries() },
  { name: 'npm-shipped ffmpeg', binaries: () => testBinaries('npm') },
];

describe('ffmpeg binaries', () => {
  /** A folder holding executables named ffmpeg and ffprobe, to be found on PATH. */
  function fakeBinDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-bin-'));
    for (const name of ['ffmpeg', 'ffprobe']) fs.writeFileSync(path.join(dir, name), '#!/bin/sh\n', { mode: 0o755 });
    return dir;
  }

  it('finds the system binaries on PATH', () => {
    const dir = fakeBinDir();
    try {
      const system = resolveFfmpegBinaries(loadConfig({ PATH: ['/nonexistent', dir].join(path.delimiter) }).ffmpeg);
      assert.deepEqual(system, {
        ffmpegPath: path.join(dir, 'ffmpeg'),
        ffprobePath: path.join(dir, 'ffprobe'),
        origin: { ffmpeg: 'system', ffprobe: 'system' },
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back to the npm-shipped binaries when none is on PATH', () => {
    const npm = resolveFfmpegBinaries(loadConfig({}).ffmpeg, { preferNpm: true });
    assert.deepEqual(npm.origin, { ffmpeg: 'npm', ffprobe: 'npm' });
    assert.match(npm.ffmpegPath, /@ffmpeg-installer/);
    assert.match(npm.ffprobePath, /@ffprobe-installer/);
    const noPath = resolveFfmpegBinaries(loadConfig({ PATH: '/nonexistent' }).ffmpeg);
    assert.deepEqual(noPath.origin, { ffmpeg: 'npm', ffprobe: 'npm' });
    assert.equal(findOnPath('ffmpeg', '/nonexistent'), undefined);
  });

  it('honours FFMPEG_PATH and FFPROBE_PATH: absolute, relative to the repository, or a command name on PATH', () => {
    const absolute = resolveFfmpegBinaries(loadConfig({ FFMPEG_PATH: '/opt/x/ffmpeg', FFPROBE_PATH: '/opt/x/ffprobe' }).ffmpeg);
    assert.deepEqual(absolute, { ffmpegPath: '/opt/x/ffmpeg', ffprobePath: '/opt/x/ffprobe', origin: { ffmpeg: 'env', ffprobe: 'env' } });
    const relative = resolveFfmpegBinaries(loadConfig({ FFMPEG_PATH: 'tools/ffmpeg', FFPROBE_PATH: './tools/ffprobe' }).ffmpeg);
    assert.equal(relative.ffmpegPath, path.join(repoRoot, 'tools/ffmpeg'));
    assert.equal(relative.ffprobePath, path.join(repoRoot, 'tools/ffprobe'));
    const dir = fakeBinDir();
    try {
      const named = resolveFfmpegBinaries(loadConfig({ FFMPEG_PATH: 'ffmpeg', FFPROBE_PATH: 'ffprobe', PATH: dir }).ffmpeg);
      assert.deepEqual(named, { ffmpegPath: path.join(dir, 'ffmpeg'), ffprobePath: path.join(dir, 'ffprobe'), origin: { ffmpeg: 'env', ffprobe: 'env' } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
