/** loadConfig: documented defaults, every slice parsed from one environment, the path rule, readable errors. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
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

  it('protected by default: loopback without keys; a public HOST needs MOODWIRE_API_KEYS or an explicit MOODWIRE_AUTH=off', () => {
    const defaults = loadConfig({});
    assert.equal(defaults.host, '127.0.0.1');
    assert.deepEqual(defaults.security.apiKeys, []);
    assert.equal(defaults.security.enabled, true);
    assert.throws(() => loadConfig({ HOST: '0.0.0.0' }), /HOST=0\.0\.0\.0 serves other machines.*MOODWIRE_API_KEYS.*MOODWIRE_AUTH=off/);
    assert.equal(loadConfig({ HOST: '0.0.0.0', MOODWIRE_AUTH: 'off' }).security.enabled, false);
    assert.equal(loadConfig({ HOST: '::1' }).host, '::1');
    const keyed = loadConfig({ HOST: '0.0.0.0', MOODWIRE_API_KEYS: 'aaaaaaaaaaaaaaaa1, bbbbbbbbbbbbbbbb2' });
    assert.deepEqual(keyed.security.apiKeys, ['aaaaaaaaaaaaaaaa1', 'bbbbbbbbbbbbbbbb2']);
    assert.throws(() => loadConfig({ MOODWIRE_API_KEYS: 'short' }), /MOODWIRE_API_KEYS: 1 key\(s\) shorter than 16 characters/);
  });

  it('reads API keys from MOODWIRE_API_KEYS_FILE, and derives one invite secret from the same keys', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-keys-'));
    const file = path.join(dir, 'keys');
    fs.writeFileSync(file, '# team keys\ncccccccccccccccc3\n\ndddddddddddddddd4\n');
    const config = loadConfig({ MOODWIRE_API_KEYS: 'aaaaaaaaaaaaaaaa1', MOODWIRE_API_KEYS_FILE: file });
    assert.deepEqual(config.security.apiKeys, ['aaaaaaaaaaaaaaaa1', 'cccccccccccccccc3', 'dddddddddddddddd4']);
    // Two nodes with the same keys accept each other's invites; other keys give another secret.
    assert.deepEqual(loadConfig({ MOODWIRE_API_KEYS_FILE: file, MOODWIRE_API_KEYS: 'aaaaaaaaaaaaaaaa1' }).security.tokenSecret, config.security.tokenSecret);
    assert.notDeepEqual(loadConfig({ MOODWIRE_API_KEYS: 'aaaaaaaaaaaaaaaa1' }).security.tokenSecret, config.security.tokenSecret);
    assert.throws(() => loadConfig({ MOODWIRE_API_KEYS_FILE: path.join(dir, 'missing') }), /MOODWIRE_API_KEYS_FILE=.*cannot read it \(ENOENT\)/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('checks origins, proxies and invite lifetimes', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://app.example.com, http://localhost:5173/' }).security.corsOrigins, ['https://app.example.com', 'http://localhost:5173']);
    assert.equal(loadConfig({ CORS_ORIGINS: '*' }).security.corsOrigins, '*');
    assert.throws(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/path' }), /CORS_ORIGINS: "https:\/\/app.example.com\/path" is not an origin/);
    assert.equal(loadConfig({ TRUST_PROXY: '1' }).security.trustProxy, 1);
    assert.deepEqual(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).security.trustProxy, ['loopback', '10.0.0.0/8']);
    assert.throws(() => loadConfig({ INVITE_DEFAULT_TTL_SEC: '7200', INVITE_MAX_TTL_SEC: '3600' }), /INVITE_DEFAULT_TTL_SEC=7200 is longer than INVITE_MAX_TTL_SEC=3600/);
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
    assert.deepEqual([config.liveTracking.options.motion.maxSteps, config.liveTracking.options.motion.maxError], [2, 0.4]);
    const cropEveryFrame = loadConfig({ LIVE_MOTION_STEPS: '0', TRACK_MOTION_MAX_ERROR: '0.25' });
    assert.deepEqual([cropEveryFrame.liveTracking.options.motion.maxSteps, cropEveryFrame.liveTracking.options.motion.maxError], [0, 0.25]);
    assert.equal(config.liveTracking.sceneCutThreshold, 30);
    assert.equal(config.liveTracking.mirrorAverage, 'off');
    assert.equal(config.classifyBatching, 'auto');
    assert.equal(config.workerMaxFrames, 4);
    // Tracking follows faces with the MediaPipe graphs, so it needs their detector on keyframes.
    assert.throws(() => loadConfig({ DETECTOR_LIVE: 'ssd' }), /LIVE_TRACKER=crop needs DETECTOR_LIVE=blazeface/);
    const everyFrame = loadConfig({ DETECTOR_LIVE: 'tiny:512', LIVE_TRACKER: 'off' });
    assert.deepEqual([everyFrame.detectors.live.kind, everyFrame.liveTracking.enabled], ['tiny', false]);
    for (const [name, value] of [['LIVE_KEYFRAME_INTERVAL', '0'], ['CLASSIFY_BATCHING', 'maybe'], ['SCENE_CUT_THRESHOLD', '0'], ['WORKER_MAX_FRAMES', '0'], ['LIVE_TRACKER', 'optical-flow'], ['LIVE_MOTION_STEPS', '-1'], ['LIVE_MOTION_STEPS', '1.5'], ['TRACK_MOTION_MAX_ERROR', '0'], ['TRACK_MOTION_MAX_ERROR', 'x']]) {
      assert.throws(() => loadConfig({ [name!]: value! }), new RegExp(`invalid configuration: .*${name}`));
    }
  });

  it('README lists every setting', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const missing = [...Object.keys(CONFIG_DEFAULTS), 'FACE_MODEL_DIR', 'FFMPEG_PATH', 'FFPROBE_PATH'].filter((name) => !readme.includes(`\`${name}\``));
    assert.deepEqual(missing, []);
  });
});
