/** Shared by the video tests: paths to real media and bad files made with the real ffmpeg. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type VideoJobView, type VideoTimeline, videoTimelineSchema } from '../contract/http.ts';
import { loadConfig } from '../server/config.ts';
import type { FrameAnalyzer } from '../server/pipeline/types.ts';
import { type FfmpegBinaries, resolveFfmpegBinaries } from '../server/video/binaries.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const groupsPan = path.resolve(repoRoot, '../shared/media/groups-pan.mp4');

/** The ffmpeg settings of this environment (PATH, FFMPEG_PATH, FFPROBE_PATH), for test configs. */
export function ffmpegEnv(): Record<string, string> {
  const names = ['PATH', 'FFMPEG_PATH', 'FFPROBE_PATH'] as const;
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

/** ffmpeg/ffprobe as the server picks them in this environment; `npm`: the npm-shipped ones. */
export function testBinaries(flavour: 'configured' | 'npm' = 'configured'): FfmpegBinaries {
  return resolveFfmpegBinaries(loadConfig(ffmpegEnv()).ffmpeg, { preferNpm: flavour === 'npm' });
}

export interface BadFiles {
  dir: string;
  text: string;
  audioOnly: string;
  truncated: string;
  empty: string;
}

/** Text, audio-only (ffmpeg lavfi sine), a cut copy of the real mp4, and zero bytes, in a temp dir. */
export function makeBadFiles(): BadFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-badvideo-'));
  const text = path.join(dir, 'notes.mp4');
  fs.writeFileSync(text, 'this is plain text, not a video\n'.repeat(20));
  const audioOnly = path.join(dir, 'tone.m4a');
  execFileSync(testBinaries().ffmpegPath, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', audioOnly]);
  const truncated = path.join(dir, 'cut.mp4');
  const full = fs.readFileSync(groupsPan);
  fs.writeFileSync(truncated, full.subarray(0, Math.floor(full.length * 0.6)));
  const empty = path.join(dir, 'empty.mp4');
  fs.writeFileSync(empty, '');
  return { dir, text, audioOnly, truncated, empty };
}

/** ffmpeg/ffprobe processes that are children of this process (to prove none leak). */
export function childFfmpegProcesses(): string[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    return out.split('\n').filter((line) => /ff(mpeg|probe)/.test(line));
  } catch {
    return []; // ps exits 1 when there is no child at all
  }
}

/** Uploads groups-pan.mp4 to a running server at `fps`, waits until the job is done and returns its timeline, checked against its schema. */
export async function analyseGroupsPan(url: string, fps: number, timeoutMs: number, options: { thumbnails?: boolean } = {}): Promise<VideoTimeline> {
  const form = new FormData();
  if (options.thumbnails) form.append('thumbnails', 'true');
  form.append('video', new Blob([fs.readFileSync(groupsPan)]), 'groups-pan.mp4');
  const accepted = await fetch(`${url}/api/v1/videos?fps=${fps}`, { method: 'POST', body: form });
  assert.equal(accepted.status, 202);
  const { id } = (await accepted.json()) as { id: string };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (await fetch(`${url}/api/v1/videos/${id}`)).json()) as VideoJobView;
    if (job.status === 'done') break;
    assert.notEqual(job.status, 'failed', JSON.stringify(job));
    assert.ok(Date.now() < deadline, `job not done in time: ${JSON.stringify(job)}`);
    await sleep(200);
  }
  const timeline = (await (await fetch(`${url}/api/v1/videos/${id}/timeline`)).json()) as VideoTimeline;
  assert.deepEqual(videoTimelineSchema.parse(timeline), timeline);
  return timeline;
}

/** Holds the frames of a stubAnalyzer while held (jobs stay running); open() lets them through. */
export class FrameGate {
  #wait: Promise<void> = Promise.resolve();
  #open: () => void = () => undefined;

  hold(): void {
    this.#open();
    this.#wait = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  open(): void {
    this.#open();
    this.#wait = Promise.resolve();
  }

  wait(): Promise<void> {
    return this.#wait;
  }
}

/** An analyzer that finds no face, for tests of the job machinery; `gate` (when given) holds frames while it is held. */
export function stubAnalyzer(gate?: FrameGate): FrameAnalyzer {
  const answer = async (frame: { width: number; height: number }) => {
    await gate?.wait();
    return { width: frame.width, height: frame.height, faces: [], skippedSmallFaces: 0, timings: {} };
  };
  return {
    analyzeEncoded: () => Promise.reject(new Error('stubAnalyzer: no encoded images in video tests')),
    analyzeRgb: (frame) => answer(frame),
  };
}

/** A gray 64x64 H.264 mp4 of `seconds` at `fps` frames/s, made with ffmpeg's lavfi source (small and quick). */
export function makeGrayVideo(file: string, seconds: number, fps = 1, side = 64): string {
  execFileSync(testBinaries().ffmpegPath, [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=gray:s=${side}x${side}:d=${seconds}:r=${fps}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file,
  ]);
  return file;
}

/** The analysis settings tests record for jobs they run outside a real server. */
export const TEST_ANALYSIS = {
  modelVersion: 'test-model',
  detector: 'ssd',
  minFaceSize: 20,
  maxSidePx: 640,
  trackMaxAgeMs: 1500,
  smoothingTauMs: 400,
  sceneCutThreshold: 30,
} as const;
