/** loadConfig: documented defaults, every slice parsed from one environment, the path rule, readable errors. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_DEFAULTS, loadConfig, repoRoot } from '../server/config.ts';

describe('loadConfig', () => {
  it('has the documented video, ffmpeg and tracking defaults', () => {
    const config = loadConfig({});
    assert.deepEqual(config.video, {
      dataDir: path.join(repoRoot, 'data'),
      maxUploadBytes: 500 * 1024 * 1024,
      sampleFps: 5,
      maxSidePx: 640,
      jobConcurrency: 1,
      maxQueuedJobs: 8,
      maxInFlightFrames: 4,
      keepUploads: false,
      uploadDir: path.join(repoRoot, 'data', 'video', 'uploads'),
      maxDurationSec: 3 * 3600,
      maxFramesPerJob: 3 * 3600 * 5,
      maxAttempts: 3,
      retentionMs: 24 * 3600 * 1000,
      maxConcurrentUploadsPerClient: 2,
      maxQueuedJobsPerClient: 4,
    });
    assert.deepEqual(config.ffmpeg, { ffmpegPath: undefined, ffprobePath: undefined, searchPath: '' });
    assert.deepEqual(config.tracking, {
      maxAgeMs: CONFIG_DEFAULTS.TRACK_MAX_AGE_MS,
      smoothingTauMs: CONFIG_DEFAULTS.SMOOTHING_TAU_MS,
      sceneCutThreshold: CONFIG_DEFAULTS.SCENE_CUT_THRESHOLD,
    });
    assert.equal(config.logLevel, 'info');
  });

  it('parses the video, ffmpeg and tracking settings from the same environment', () => {
    const config = loadConfig({
      VIDEO_MAX_UPLOAD_MB: '2',
      VIDEO_SAMPLE_FPS: '2.5',
      VIDEO_KEEP_UPLOADS: 'true',
      VIDEO_JOB_CONCURRENCY: '2',
      VIDEO_MAX_INFLIGHT_FRAMES: '3',
      FFMPEG_PATH: '/opt/ffmpeg/bin/ffmpeg',
      PATH: '/a:/b',
      TRACK_MAX_AGE_MS: '250',
      SMOOTHING_TAU_MS: '0',
      SCENE_CUT_THRESHOLD: '45',
    });
    assert.equal(config.video.maxUploadBytes, 2 * 1024 * 1024);
    assert.equal(config.video.sampleFps, 2.5);
    assert.equal(config.video.keepUploads, true);
    assert.equal(config.video.jobConcurrency, 2);
    assert.equal(config.video.maxInFlightFrames, 3);
    assert.deepEqual(config.ffmpeg, { ffmpegPath: '/opt/ffmpeg/bin/ffmpeg', ffprobePath: undefined, searchPath: '/a:/b' });
    assert.deepEqual(config.tracking, { maxAgeMs: 250, smoothingTauMs: 0, sceneCutThreshold: 45 });
    assert.equal(config.liveTracking.sceneCutThreshold, 45, 'live streams and video jobs share one threshold');
  });

  it('resolves relative paths against the repository root, not the working directory', () => {
    const config = loadConfig({ MOODWIRE_DATA_DIR: 'var/moodwire', MODEL_DIR: 'models/other', CLIENT_DIR: '/srv/client', FFMPEG_PATH: 'bin/ffmpeg' });
    assert.equal(config.video.dataDir, path.join(repoRoot, 'var/moodwire'));
    assert.equal(config.modelDir, path.join(repoRoot, 'models/other'));
    assert.equal(config.clientDir, '/srv/client');
    assert.equal(config.ffmpeg.ffmpegPath, path.join(repoRoot, 'bin/ffmpeg'));
    assert.equal(loadConfig({ FFMPEG_PATH: 'ffmpeg' }).ffmpeg.ffmpegPath, 'ffmpeg', 'a bare command name is kept for the PATH lookup');
  });

  it('throws one readable error naming every bad setting', () => {
    assert.throws(() => loadConfig({ VIDEO_SAMPLE_FPS: '0' }), /invalid configuration:[\s\S]*VIDEO_SAMPLE_FPS/);
    assert.throws(() => loadConfig({ VIDEO_KEEP_UPLOADS: 'maybe' }), /VIDEO_KEEP_UPLOADS/);
    assert.throws(() => loadConfig({ MOODWIRE_DATA_DIR: '', TRACK_MAX_AGE_MS: '0' }), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /MOODWIRE_DATA_DIR/);
      assert.match(error.message, /TRACK_MAX_AGE_MS/);
      return true;
    });
  });

  it('has the live tracking defaults and validates the live settings together', () => {
    const config = loadConfig({});
    assert.equal(config.detectors.live.kind, 'blazeface');
    assert.equal(config.liveTracking.enabled, true);
    assert.deepEqual(config.liveTracking.keyframe, { intervalFrames: 10, intervalMs: 2000 });
    assert.equal(config.liveTracking.options.minScore, 0.5);
    assert.equal(config.liveTracking.sceneCutThreshold, 30);
    assert.equal(config.liveTracking.mirrorAverage, 'off');
    assert.equal(config.classifyBatching, 'auto');
    assert.equal(config.workerMaxFrames, 4);
    // Tracking follows faces with the MediaPipe graphs, so it needs their detector on keyframes.
    assert.throws(() => loadConfig({ DETECTOR_LIVE: 'ssd' }), /LIVE_TRACKER=crop needs DETECTOR_LIVE=blazeface/);
    const everyFrame = loadConfig({ DETECTOR_LIVE: 'tiny:512', LIVE_TRACKER: 'off' });
    assert.deepEqual([everyFrame.detectors.live.kind, everyFrame.liveTracking.enabled], ['tiny', false]);
    for (const [name, value] of [['LIVE_KEYFRAME_INTERVAL', '0'], ['CLASSIFY_BATCHING', 'maybe'], ['SCENE_CUT_THRESHOLD', '0'], ['WORKER_MAX_FRAMES', '0'], ['LIVE_TRACKER', 'optical-flow']]) {
      assert.throws(() => loadConfig({ [name!]: value! }), new RegExp(`invalid configuration: .*${name}`));
    }
  });

  it('README lists every setting', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const missing = [...Object.keys(CONFIG_DEFAULTS), 'FACE_MODEL_DIR', 'FFMPEG_PATH', 'FFPROBE_PATH'].filter((name) => !readme.includes(`\`${name}\``));
    assert.deepEqual(missing, []);
  });
});
