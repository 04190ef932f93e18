/**
 * `npm run -s analyze -- FILE [--fps N] [--format json|csv|summary-csv] [--out PATH]`: analyses a video file
 * in-process with the same pipeline as the server (worker threads, batcher, tracker), shows a
 * progress bar on stderr and writes the timeline, and nothing else, to stdout or --out (npm's
 * `-s` keeps npm's own banner off stdout).
 */
import fs from 'node:fs';
import path from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { type Config, loadConfig } from '../config.ts';
import { AppError } from '../../contract/errors.ts';
import { startInference, waitForModel } from '../inference/engine.ts';
import { analyzeVideoFile } from './analyze-file.ts';
import { resolveFfmpegBinaries } from './binaries.ts';
import { probeVideo } from './probe.ts';
import type { VideoSample } from './store.ts';
import { videoAnalysisSettings } from './analysis-settings.ts';
import { buildTimeline, timelineSummaryToCsv, timelineToCsv } from './timeline.ts';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 30) throw new InvalidArgumentError('expected a number from 0.1 to 30');
  return n;
}

const program = new Command()
  .name('analyze')
  .description('Per-face emotion timelines of a video file (same pipeline as the server).')
  .argument('<file>', 'video file (anything ffmpeg decodes)')
  .option('--fps <n>', 'samples per second of video (default: VIDEO_SAMPLE_FPS or 5)', positiveNumber)
  .option('--format <format>', 'json, csv (a row per track and sample) or summary-csv (a row per track)', 'json')
  .option('--out <path>', 'write the timeline here instead of stdout')
  .option('--quiet', 'no progress bar')
  .showHelpAfterError();

program.parse();
const file = program.args[0]!;
const opts = program.opts<{ fps?: number; format: string; out?: string; quiet?: boolean }>();
if (!['json', 'csv', 'summary-csv'].includes(opts.format)) program.error('--format must be json, csv or summary-csv');

/** The settings, with warnings and errors only logged unless LOG_LEVEL says otherwise; a bad setting ends the CLI with its message. */
function cliConfig(): Config {
  try {
    return loadConfig({ LOG_LEVEL: 'warn', ...process.env });
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return process.exit(1);
  }
}

const config = cliConfig();
// Logs go to stderr so stdout carries only the timeline.
const logger = pino({ level: config.logLevel }, pino.destination(2));
const binaries = resolveFfmpegBinaries(config.ffmpeg);
const fps = opts.fps ?? config.video.sampleFps;

async function main(): Promise<number> {
  const probe = await probeVideo(path.resolve(file), binaries);
  await waitForModel(config.modelDir, logger, config.modelPollMs);
  const inference = await startInference(config, logger);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const expected = Math.max(1, Math.ceil(probe.durationSec * fps));
  const bar = opts.quiet
    ? undefined
    : new SingleBar({
        stream: process.stderr,
        format: ' {bar} {percentage}% | {value}/{total} frames | {faces} faces | {rtf}x real time | eta {eta_formatted}',
        hideCursor: true,
      });
  bar?.start(expected, 0, { faces: 0, rtf: '0.00' });
  const samples: VideoSample[] = [];
  const started = performance.now();
  try {
    await analyzeVideoFile({
      file: path.resolve(file),
      probe,
      analyzer: inference.analyzer,
      binaries,
      fps,
      maxSidePx: config.video.maxSidePx,
      maxInFlightFrames: config.video.maxInFlightFrames,
      tracker: config.tracking,
      sceneCutThreshold: config.tracking.sceneCutThreshold,
      signal: controller.signal,
      onSample: (sample) => {
        samples.push(sample);
        const mediaSec = sample.t + 1 / fps;
        const wallSec = (performance.now() - started) / 1000;
        bar?.update(Math.min(expected, samples.length), { faces: sample.faces.length, rtf: (mediaSec / wallSec).toFixed(2) });
      },
    });
  } finally {
    bar?.stop();
    await inference.close();
  }
  const modelVersion = inference.pool.modelVersion;
  const wallSec = (performance.now() - started) / 1000;
  const timeline = buildTimeline(
    {
      id: path.basename(file),
      status: 'done',
      durationSec: probe.durationSec,
      sampledFps: fps,
      width: probe.width,
      height: probe.height,
      originalName: path.basename(file),
      analysis: videoAnalysisSettings({ ...config, video: { ...config.video, sampleFps: fps } }, modelVersion),
    },
    samples,
  );
  const text = opts.format === 'csv' ? timelineToCsv(timeline) : opts.format === 'summary-csv' ? timelineSummaryToCsv(timeline) : `${JSON.stringify(timeline, null, 2)}\n`;
  if (opts.out) fs.writeFileSync(opts.out, text);
  else process.stdout.write(text);
  process.stderr.write(
    `analysed ${probe.durationSec.toFixed(1)} s of video at ${fps} fps: ${samples.length} samples, ${timeline.tracks.length} tracks, ` +
      `${wallSec.toFixed(1)} s wall (${(probe.durationSec / wallSec).toFixed(2)}x real time)\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof AppError) {
      process.stderr.write(`error: ${error.code}: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
