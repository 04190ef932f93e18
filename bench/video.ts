/**
 * `npm run bench:video [-- --fps 5 --streams 2 --live-fps 5]`: real-time factor of video analysis
 * (seconds of video per wall-clock second) at the given sampling rate, first alone, then while
 * live socket.io streams send JPEG frames of the same video to the same server (same workers and
 * batcher, where live frames have priority). Prints a JSON report on stdout.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { pino } from 'pino';
import sharp from 'sharp';
import { io as connect, type Socket } from 'socket.io-client';
import { loadConfig } from '../server/config.ts';
import type { Ack, ClientToServerEvents, FrameResult, ServerToClientEvents } from '../server/live/protocol.ts';
import { startServer } from '../server/server.ts';
import { analyzeVideoFile } from '../server/video/analyze-file.ts';
import { resolveFfmpegBinaries } from '../server/video/binaries.ts';
import { loadVideoConfig } from '../server/video/config.ts';
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
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
const config = loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1' });
const videoConfig = loadVideoConfig();
const binaries = resolveFfmpegBinaries();

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

async function videoRun(analyzer: Parameters<typeof analyzeVideoFile>[0]['analyzer']) {
  const probe = await probeVideo(opts.file, binaries);
  const started = performance.now();
  let faces = 0;
  const samples = await analyzeVideoFile({
    file: opts.file,
    probe,
    analyzer,
    binaries,
    fps: opts.fps,
    maxSidePx: videoConfig.maxSidePx,
    maxInFlightFrames: videoConfig.maxInFlightFrames,
    onSample: (s) => {
      faces += s.faces.length;
    },
  });
  const wallSec = (performance.now() - started) / 1000;
  return { samples, faces, durationSec: probe.durationSec, wallSec: +wallSec.toFixed(2), realTimeFactor: +(probe.durationSec / wallSec).toFixed(3) };
}

const server = await startServer(config, logger);
try {
  const inference = await server.ready;
  const jpegs = await jpegFramesOf(opts.file, opts.liveFps);
  // Warm-up: the first frames of each worker pay for kernel compilation.
  await videoRun(inference.analyzer);

  const alone = await videoRun(inference.analyzer);

  const stop = new AbortController();
  const streams = Array.from({ length: opts.streams }, (_, i) => liveStream(server.url, i, jpegs, opts.liveFps, stop.signal));
  await new Promise((r) => setTimeout(r, 1000)); // let the live streams reach steady state
  const withLive = await videoRun(inference.analyzer);
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
}
