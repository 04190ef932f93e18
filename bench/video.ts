/**
 * `npm run bench:video [-- --fps 5 --streams 2 --live-fps 5]`: real-time factor of video analysis
 * (seconds of video per wall-clock second, upload to done through the HTTP API) at the given
 * sampling rate, first alone, then while
 * live socket.io streams send JPEG frames of the same video to the same server (same workers and
 * batcher, where live frames have priority). Prints a JSON report on stdout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { pino } from 'pino';
import sharp from 'sharp';
import { io as connect, type Socket } from 'socket.io-client';
import { loadConfig } from '../server/config.ts';
import type { Ack, ClientToServerEvents, FrameResult, ServerToClientEvents } from '../contract/socket.ts';
import { startServer } from '../server/server.ts';
import { resolveFfmpegBinaries } from '../server/video/binaries.ts';
import { decodeFrames } from '../server/video/frames.ts';
import { probeVideo } from '../server/video/probe.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = new Command()
  .option('--file <path>', 'video to analyse', path.resolve(repoRoot, '../shared/media/groups-pan.mp4'))
  .option('--fps <n>', 'video sampling rate', Number, 5)
  .option('--streams <n>', 'live streams during the second run', Number, 2)
  .option('--live-fps <n>', 'frames per second each live stream sends (at most one in flight)', Number, 5)
  .parse()
  .opts<{ file: string; fps: number; streams: number; liveFps: number }>();

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-bench-'));
const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, PORT: '0', HOST: '127.0.0.1', MOODWIRE_DATA_DIR: dataDir });
const logger = pino({ level: config.logLevel }, pino.destination(2));
const binaries = resolveFfmpegBinaries(config.ffmpeg);

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function jpegFramesOf(file: string, fps: number): Promise<Buffer[]> {
  const probe = await probeVideo(file, binaries);
  const jpegs: Buffer[] = [];
  for await (const f of decodeFrames(file, { binaries, fps, width: probe.width, height: probe.height })) {
    jpegs.push(await sharp(f.frame.data, { raw: { width: f.frame.width, height: f.frame.height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer());
  }
  return jpegs;
}

/** One live participant sending frames at `fps`, one in flight at a time (like the browser client). */
async function liveStream(url: string, index: number, jpegs: Buffer[], fps: number, signal: AbortSignal) {
  const socket: Client = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const joined = (await socket.timeout(30_000).emitWithAck('session:join', { sessionId: `bench-${index}` })) as Ack<unknown>;
  if (!joined.ok) throw new Error(`join failed: ${joined.error.message}`);
  const latencies: number[] = [];
  let answered = 0;
  let refused = 0;
  let seq = 0;
  const periodMs = 1000 / fps;
  while (!signal.aborted) {
    const started = performance.now();
    const image = jpegs[seq % jpegs.length]!;
    const ack = (await socket.timeout(30_000).emitWithAck('frame', { seq: seq++, ts: Date.now(), image })) as Ack<FrameResult>;
    const ms = performance.now() - started;
    if (ack.ok) {
      answered += 1;
      latencies.push(ms);
    } else refused += 1;
    const wait = periodMs - ms;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  socket.close();
  return { answered, refused, latencies };
}

/** One job through the real HTTP API (upload, probe, queue, decode, analyse, persist) until done. */
async function videoRun(baseUrl: string) {
  const form = new FormData();
  form.append('video', new Blob([fs.readFileSync(opts.file)]), path.basename(opts.file));
  const started = performance.now();
  const accepted = await fetch(`${baseUrl}/api/v1/videos?fps=${opts.fps}`, { method: 'POST', body: form });
  const { id } = (await accepted.json()) as { id: string };
  if (accepted.status !== 202) throw new Error(`upload refused: ${accepted.status}`);
  let job: { status: string; durationSec: number; framesAnalyzed: number; error?: string };
  for (;;) {
    job = (await (await fetch(`${baseUrl}/api/v1/videos/${id}`)).json()) as typeof job;
    if (job.status === 'done' || job.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const wallSec = (performance.now() - started) / 1000;
  if (job.status !== 'done') throw new Error(`video job failed: ${job.error}`);
  const timeline = (await (await fetch(`${baseUrl}/api/v1/videos/${id}/timeline`)).json()) as { tracks: unknown[]; frames: Array<{ faceCount: number }> };
  await fetch(`${baseUrl}/api/v1/videos/${id}`, { method: 'DELETE' });
  return {
    samples: job.framesAnalyzed,
    faceSamples: timeline.frames.reduce((n, f) => n + f.faceCount, 0),
    tracks: timeline.tracks.length,
    durationSec: job.durationSec,
    wallSec: +wallSec.toFixed(2),
    realTimeFactor: +(job.durationSec / wallSec).toFixed(3),
  };
}

const server = await startServer(config, logger);
try {
  const inference = await server.ready;
  const jpegs = await jpegFramesOf(opts.file, opts.liveFps);
  // Warm-up: the first frames of each worker pay for kernel compilation.
  await videoRun(server.url);

  const alone = await videoRun(server.url);

  const stop = new AbortController();
  const streams = Array.from({ length: opts.streams }, (_, i) => liveStream(server.url, i, jpegs, opts.liveFps, stop.signal));
  await new Promise((r) => setTimeout(r, 1000)); // let the live streams reach steady state
  const withLive = await videoRun(server.url);
  stop.abort();
  const live = await Promise.all(streams);
  const latencies = live.flatMap((s) => s.latencies);
  const liveWallSec = withLive.wallSec + 1;

  const report = {
    file: path.basename(opts.file),
    sampledFps: opts.fps,
    workers: config.workers,
    backend: inference.pool.backend,
    videoDetector: config.detectors.video,
    liveDetector: config.detectors.live,
    alone,
    withLive: {
      ...withLive,
      streams: opts.streams,
      liveFpsRequested: opts.liveFps,
      liveFramesAnswered: live.reduce((n, s) => n + s.answered, 0),
      liveFramesRefused: live.reduce((n, s) => n + s.refused, 0),
      liveFpsPerStream: +(live.reduce((n, s) => n + s.answered, 0) / opts.streams / liveWallSec).toFixed(2),
      liveLatencyMs: { p50: Math.round(percentile(latencies, 50)), p95: Math.round(percentile(latencies, 95)) },
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  await server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
