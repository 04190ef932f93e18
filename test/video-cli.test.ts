/** `npm run analyze` on the real video, as a user runs it: a child process, real inference, real ffmpeg. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EMOTIONS } from '../contract/emotions.ts';
import { type BadFiles, groupsPan, makeBadFiles, repoRoot } from './video-support.ts';

const modelDir = process.env.TEST_MODEL_DIR ?? path.join(repoRoot, 'models/emotion');
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-cli-'));
let bad: BadFiles | undefined;
after(() => {
  fs.rmSync(outDir, { recursive: true, force: true });
  if (bad) fs.rmSync(bad.dir, { recursive: true, force: true });
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'server/video/cli.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, MODEL_DIR: modelDir, WORKERS: '2', LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run analyze', () => {
  it('writes the CSV timeline of groups-pan.mp4 to --out', async () => {
    const out = path.join(outDir, 'timeline.csv');
    const { code, stdout, stderr } = await runCli([groupsPan, '--fps', '2', '--format', 'csv', '--out', out]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, '', 'with --out nothing goes to stdout');
    assert.match(stderr, /analysed 12\.0 s of video at 2 fps: 24 samples, \d+ tracks/);
    const rows = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(rows[0], ['track_id', 't', 'x', 'y', 'width', 'height', 'score', 'dominant', ...EMOTIONS, ...EMOTIONS.map((e) => `smoothed_${e}`)].join(','));
    // 3, then 4, then 4 faces over 24 samples: about 88 face samples when every face is found.
    assert.ok(rows.length - 1 >= 60 && rows.length - 1 <= 110, `${rows.length - 1} face rows`);
    const times = new Set(rows.slice(1).map((r) => Number(r.split(',')[1])));
    assert.ok([...times].every((t) => t >= 0 && t < 12 && Math.abs(t * 2 - Math.round(t * 2)) < 1e-6), 'media timestamps on the 2 fps grid');
  });

  it('run the documented way (npm run -s analyze, stdout redirected to a file), writes a JSON timeline and nothing else', async () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    assert.match(readme, /npm run -s analyze -- interview\.mp4 --fps 5 > timeline\.json/, 'README documents the command this test runs');
    const out = path.join(outDir, 'timeline.json');
    const errors = path.join(outDir, 'stderr.txt');
    const code = await new Promise<number | null>((resolve, reject) => {
      // A shell redirect, as a user types it.
      const child = spawn('sh', ['-c', 'npm run -s analyze -- "$VIDEO" --fps 1 > "$OUT" 2> "$ERR"'], {
        cwd: repoRoot,
        env: { ...process.env, MODEL_DIR: modelDir, WORKERS: '2', VIDEO: groupsPan, OUT: out, ERR: errors },
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
    const stderr = fs.readFileSync(errors, 'utf8');
    assert.equal(code, 0, stderr);
    const text = fs.readFileSync(out, 'utf8');
    const timeline = JSON.parse(text) as { id: string; sampledFps: number; frames: unknown[]; tracks: unknown[] };
    assert.equal(timeline.id, 'groups-pan.mp4');
    assert.equal(timeline.sampledFps, 1);
    assert.equal(timeline.frames.length, 12);
    assert.ok(timeline.tracks.length > 0);
    assert.match(stderr, /analysed 12\.0 s of video at 1 fps: 12 samples/, 'the summary goes to stderr');
  });

  it('refuses a bad file with its reason, before loading any model', async () => {
    bad = makeBadFiles();
    const refused = await runCli([bad.audioOnly]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /unsupported_media_type: the file has no video stream/);
    assert.equal(refused.stdout, '');
  });
});
