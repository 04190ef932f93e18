/**
 * npm run bench:live -- --clients N --fps F --seconds T
 *
 * N socket.io clients stream frames of ../shared/media/groups-pan.mp4 at F fps for T seconds to a
 * real Moodwire server (started in this process on an ephemeral port unless --url is given), each
 * without waiting for answers (the server's per-socket backpressure drops what it cannot take).
 * Then the same load (same frames, same schedule, same latest-frame-wins rule per client) runs
 * through face-api's own per-frame `detectAllFaces().withFaceLandmarks().withFaceExpressions()`
 * on one tfjs instance in this process, as a naive server would. Prints p50/p95/p99 round-trip
 * latency, frames processed and dropped, faces/s for both, and their ratio.
 * Use --max-p95 250 --search to find the largest N at F fps whose p95 stays under the bound.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import sharp from 'sharp';
import { io as connect, type Socket } from 'socket.io-client';
import { type FfmpegConfig, loadConfig, repoRoot } from '../server/config.ts';
import { initBackend, tf } from '../contract/backend.ts';
import type { Ack, FrameResult } from '../contract/socket.ts';
import { faceapi, type FaceApiTensor3D, loadFaceNets } from '../server/pipeline/faceapi.ts';
import { startServer } from '../server/server.ts';
import { resolveFfmpegBinaries } from '../server/video/binaries.ts';

interface Options {
  clients: number;
  fps: number;
  seconds: number;
  url?: string;
  video: string;
  baseline: boolean;
  search: boolean;
  maxP95: number;
}

interface RunStats {
  label: string;
  sent: number;
  processed: number;
  dropped: number;
  errors: number;
  faces: number;
  seconds: number;
  rtt: number[];
}

const program = new Command()
  .option('--clients <n>', 'concurrent clients', (v) => Number(v), 2)
  .option('--fps <f>', 'frames per second per client', (v) => Number(v), 5)
  .option('--seconds <t>', 'seconds of streaming', (v) => Number(v), 20)
  .option('--url <url>', 'an already running server (default: start one in this process)')
  .option('--video <file>', 'source video', path.resolve(repoRoot, '../shared/media/groups-pan.mp4'))
  .option('--no-baseline', 'skip the face-api per-frame baseline')
  .option('--search', 'increase --clients from 1 until p95 exceeds --max-p95 (no baseline)', false)
  .option('--max-p95 <ms>', 'latency bound for --search', (v) => Number(v), 250);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** JPEG frames of the video at `fps`, decoded by ffmpeg (system or npm-shipped binary). */
function extractFrames(video: string, fps: number, ffmpeg: FfmpegConfig): Buffer[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-bench-'));
  try {
    const { ffmpegPath } = resolveFfmpegBinaries(ffmpeg);
    execFileSync(ffmpegPath, ['-loglevel', 'error', '-i', video, '-vf', `fps=${fps}`, '-q:v', '4', path.join(dir, 'f%05d.jpg')]);
    return readdirSync(dir)
      .sort()
      .map((f) => readFileSync(path.join(dir, f)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Drives `clients` streams at `fps` for `seconds`: each tick a client offers its next frame to
 * `send`; the returned promise settles with 'ok' (faces) | 'dropped' | 'error'. RTT counts from the
 * scheduled send time, so a blocked event loop shows up as latency.
 */
async function drive(
  label: string,
  options: Options,
  frames: Buffer[],
  send: (client: number, seq: number, image: Buffer) => Promise<{ outcome: 'ok' | 'dropped' | 'error'; faces: number }>,
): Promise<RunStats> {
  const stats: RunStats = { label, sent: 0, processed: 0, dropped: 0, errors: 0, faces: 0, seconds: options.seconds, rtt: [] };
  const periodMs = 1000 / options.fps;
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const ticks = Math.floor(options.seconds * options.fps);
  for (let tick = 0; tick < ticks; tick++) {
    for (let client = 0; client < options.clients; client++) {
      // Clients are staggered within the period, as independent cameras would be.
      const due = started + tick * periodMs + (client * periodMs) / options.clients;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const image = frames[(tick + client * 7) % frames.length]!;
      stats.sent += 1;
      pending.push(
        send(client, tick, image).then(({ outcome, faces }) => {
          if (outcome === 'ok') {
            stats.processed += 1;
            stats.faces += faces;
            stats.rtt.push(performance.now() - due);
          } else if (outcome === 'dropped') stats.dropped += 1;
          else stats.errors += 1;
        }),
      );
    }
  }
  await Promise.all(pending);
  stats.seconds = (performance.now() - started) / 1000;
  stats.rtt.sort((a, b) => a - b);
  return stats;
}

async function runServer(options: Options, frames: Buffer[], url: string): Promise<RunStats> {
  const sockets: Socket[] = [];
  for (let i = 0; i < options.clients; i++) {
    const socket = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    // Sessions of up to 4 clients, so `emotions` relays are part of the load.
    const ack = (await socket.timeout(30_000).emitWithAck('session:join', { sessionId: `bench-${Math.floor(i / 4)}` })) as Ack<unknown>;
    if (!ack.ok) throw new Error(`join failed: ${ack.error.message}`);
    sockets.push(socket);
  }
  try {
    return await drive('moodwire', options, frames, async (client, seq, image) => {
      let ack: Ack<FrameResult>;
      try {
        ack = (await sockets[client]!.timeout(60_000).emitWithAck('frame', { seq, ts: Date.now(), image })) as Ack<FrameResult>;
      } catch {
        return { outcome: 'error', faces: 0 }; // no answer within 60 s
      }
      if (ack.ok) return { outcome: 'ok', faces: ack.faces.length };
      return { outcome: ack.error.code === 'frame_dropped' ? 'dropped' : 'error', faces: 0 };
    });
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
}

/** face-api's own chain per frame, one tfjs instance, same per-client latest-frame-wins rule. */
async function runBaseline(options: Options, frames: Buffer[], detector: faceapi.TinyFaceDetectorOptions | faceapi.SsdMobilenetv1Options): Promise<RunStats> {
  await initBackend('wasm');
  await loadFaceNets(path.resolve(repoRoot, 'node_modules/@vladmandic/face-api/model'));
  await faceapi.nets.faceExpressionNet.loadFromDisk(path.resolve(repoRoot, 'node_modules/@vladmandic/face-api/model'));
  const decoded = await Promise.all(frames.map((f) => sharp(f).removeAlpha().raw().toBuffer({ resolveWithObject: true })));
  const analyse = async (index: number): Promise<number> => {
    const { data, info } = decoded[index]!;
    const tensor = tf.tensor3d(new Uint8Array(data), [info.height, info.width, 3], 'int32');
    try {
      const result = await faceapi.detectAllFaces(tensor as unknown as FaceApiTensor3D as never, detector).withFaceLandmarks().withFaceExpressions();
      return result.length;
    } finally {
      tensor.dispose();
    }
  };
  await analyse(0); // warm-up, as the server warms up before /readyz

  // One engine: frames run one at a time; each client keeps one in flight and one waiting.
  let chain = Promise.resolve();
  const inFlight = new Map<number, boolean>();
  const waiting = new Map<number, { index: number; settle: (r: { outcome: 'ok' | 'dropped'; faces: number }) => void }>();
  const run = (client: number, index: number, settle: (r: { outcome: 'ok' | 'dropped'; faces: number }) => void): void => {
    inFlight.set(client, true);
    chain = chain.then(async () => {
      const faces = await analyse(index);
      settle({ outcome: 'ok', faces });
      inFlight.set(client, false);
      const next = waiting.get(client);
      if (next) {
        waiting.delete(client);
        run(client, next.index, next.settle);
      }
    });
  };
  const byImage = new Map(frames.map((f, i) => [f, i]));
  return drive('face-api per frame', options, frames, (client, _seq, image) =>
    new Promise((resolve) => {
      const index = byImage.get(image)!;
      if (!inFlight.get(client)) return run(client, index, resolve);
      waiting.get(client)?.settle({ outcome: 'dropped', faces: 0 });
      waiting.set(client, { index, settle: resolve });
    }),
  );
}

function summary(s: RunStats): Record<string, number | string> {
  return {
    run: s.label,
    sent: s.sent,
    processed: s.processed,
    dropped: s.dropped,
    errors: s.errors,
    'p50 ms': Math.round(percentile(s.rtt, 50)),
    'p95 ms': Math.round(percentile(s.rtt, 95)),
    'p99 ms': Math.round(percentile(s.rtt, 99)),
    'faces/s': Number((s.faces / s.seconds).toFixed(1)),
    'frames/s': Number((s.processed / s.seconds).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const options = program.parse(process.argv).opts<Options>();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-bench-data-'));
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, PORT: '0', HOST: '127.0.0.1', MOODWIRE_DATA_DIR: dataDir });
  const frames = extractFrames(options.video, options.fps, config.ffmpeg);
  const logger = pino({ level: config.logLevel });
  let url = options.url;
  let close = async (): Promise<void> => {
    rmSync(dataDir, { recursive: true, force: true });
  };
  if (!url) {
    const server = await startServer(config, logger);
    await server.ready;
    url = server.url;
    close = async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    };
  }
  console.log(
    `bench:live ${options.clients} clients x ${options.fps} fps x ${options.seconds} s, ${frames.length} frames of ${path.basename(options.video)}; ` +
      `server ${url} (workers ${config.workers}, live detector ${config.detectors.live.kind}${config.detectors.live.inputSize ? `:${config.detectors.live.inputSize}` : ''}, batch ${config.batch.maxSize}/${config.batch.maxDelayMs} ms)`,
  );
  try {
    if (options.search) {
      const rows: Record<string, number | string>[] = [];
      for (let clients = 1; clients <= 64; clients++) {
        const stats = await runServer({ ...options, clients }, frames, url);
        const row = { clients, ...summary(stats) };
        rows.push(row);
        console.log(JSON.stringify(row));
        if (percentile(stats.rtt, 95) >= options.maxP95 || stats.processed === 0) break;
      }
      console.table(rows);
      const ok = rows.filter((r) => (r['p95 ms'] as number) < options.maxP95);
      console.log(`largest N at ${options.fps} fps with p95 < ${options.maxP95} ms: ${ok.length > 0 ? ok[ok.length - 1]!.clients : 0}`);
      return;
    }
    const ours = await runServer(options, frames, url);
    await close();
    close = async () => undefined;
    const rows = [summary(ours)];
    console.log(JSON.stringify(rows[0]));
    if (options.baseline) {
      const live = config.detectors.live;
      const detector =
        live.kind === 'ssd'
          ? new faceapi.SsdMobilenetv1Options({ minConfidence: live.minScore })
          : new faceapi.TinyFaceDetectorOptions({ inputSize: live.inputSize, scoreThreshold: live.minScore });
      const base = await runBaseline(options, frames, detector);
      rows.push(summary(base));
      console.table(rows);
      const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'inf');
      console.log(
        `ratio moodwire / face-api per frame: faces/s x${ratio(ours.faces / ours.seconds, base.faces / base.seconds)}, ` +
          `processed x${ratio(ours.processed, base.processed)}, p95 latency x${ratio(percentile(ours.rtt, 95), percentile(base.rtt, 95))}`,
      );
    } else {
      console.table(rows);
    }
  } finally {
    await close();
  }
}

await main();
process.exit(0);
