import fs from 'node:fs/promises';
import ffmpeg from 'fluent-ffmpeg';
import type { FfprobeData, FfprobeStream } from 'fluent-ffmpeg';
import { AppError } from '../../contract/errors.ts';
import type { FfmpegBinaries } from './binaries.ts';
import { publicFfmpegMessage, refersToOtherFiles } from './ffmpeg-messages.ts';

/** What the decoder needs to know about a video before analysing it. */
export interface VideoProbe {
  durationSec: number;
  /** Frame size after ffmpeg's automatic rotation (what the decoder outputs). */
  width: number;
  height: number;
  /** Nominal frame rate of the source, 0 when unknown. */
  frameRate: number;
  codec: string;
  formatName: string;
}

/** Demuxers that read other files or URLs named inside the upload: never analysed. */
const LIST_FORMATS = /(^|,)(concat|hls|applehttp|dash)(,|$)/;
const REFERS_TO_FILES = 'not a video file: it is a playlist or file list that refers to other files; upload the video itself';

function runFfprobe(file: string, binaries: FfmpegBinaries): Promise<FfprobeData> {
  return new Promise((resolve, reject) => {
    ffmpeg(file)
      .setFfprobePath(binaries.ffprobePath)
      .ffprobe(['-v', 'error'], (error: unknown, data: FfprobeData) => (error ? reject(error) : resolve(data)));
  });
}

function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  const [num, den] = rate.split('/').map(Number);
  if (num === undefined || !Number.isFinite(num)) return 0;
  if (den === undefined) return num;
  return den > 0 ? num / den : 0;
}

function rotationOf(stream: FfprobeStream): number {
  const raw = stream.rotation ?? (stream.tags as Record<string, unknown> | undefined)?.rotate;
  const degrees = Number(raw ?? 0);
  return Number.isFinite(degrees) ? ((Math.round(degrees) % 360) + 360) % 360 : 0;
}

function positive(value: unknown): number | undefined {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Decode one frame from the last second: a file whose index is intact but whose data is cut
 * (a truncated upload) passes ffprobe and only fails here.
 */
function decodesNearEnd(file: string, durationSec: number, binaries: FfmpegBinaries): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const seekFromEnd = Math.min(1, durationSec / 2);
    const command = ffmpeg(file)
      .setFfmpegPath(binaries.ffmpegPath)
      .inputOptions(['-v', 'error', '-sseof', `-${seekFromEnd.toFixed(3)}`])
      .outputOptions(['-map', '0:v:0', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24']);
    let settled = false;
    const finish = (ok: boolean, stderr: string) => {
      if (settled) return;
      settled = true;
      resolve({ ok, stderr });
    };
    command.on('error', (error: Error, _stdout: string | null, stderr: string | null) => finish(false, stderr || error.message));
    command.on('end', (_stdout: string | null, stderr: string | null) => finish(bytes > 0, stderr ?? ''));
    const out = command.pipe();
    out.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    out.on('error', () => finish(false, 'output stream error'));
  });
}

/**
 * Check that `file` is a video we can decode and read its size, duration and rate.
 * Throws AppError 415 (not a video: unknown format, no video stream) or 422 (empty, cut, corrupt).
 * `accept` sees the duration as soon as ffprobe has read it, before any frame is decoded, and
 * throws to refuse the video (the job caps: a ten-hour video is refused without decoding it).
 */
export async function probeVideo(file: string, binaries: FfmpegBinaries, accept?: (durationSec: number) => void): Promise<VideoProbe> {
  const stat = await fs.stat(file);
  if (stat.size === 0) throw new AppError('undecodable_video', 'the uploaded file is empty (0 bytes)');

  let data: FfprobeData;
  try {
    data = await runFfprobe(file, binaries);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/Invalid data found when processing input/i.test(message)) {
      throw new AppError('unsupported_media_type', 'not a video file: ffprobe does not recognise its format');
    }
    if (refersToOtherFiles(message)) throw new AppError('unsupported_media_type', REFERS_TO_FILES);
    throw new AppError('undecodable_video', `the video cannot be read (${publicFfmpegMessage(message, file) || 'ffprobe failed'})`);
  }

  if (LIST_FORMATS.test(data.format.format_name ?? '')) throw new AppError('unsupported_media_type', REFERS_TO_FILES);

  const video = data.streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  if (!video) {
    const kinds = [...new Set(data.streams.map((s) => s.codec_type ?? 'unknown'))];
    throw new AppError(
      'unsupported_media_type',
      kinds.length > 0 ? `the file has no video stream (only ${kinds.join(', ')})` : 'the file has no video stream',
    );
  }
  const codedWidth = positive(video.width);
  const codedHeight = positive(video.height);
  if (!codedWidth || !codedHeight) throw new AppError('undecodable_video', 'the video stream has no frame size');
  const durationSec = positive(video.duration) ?? positive(data.format.duration);
  if (!durationSec) throw new AppError('undecodable_video', 'the video has no known duration');
  accept?.(durationSec);

  const tail = await decodesNearEnd(file, durationSec, binaries);
  if (!tail.ok) {
    const detail = publicFfmpegMessage(tail.stderr, file);
    throw new AppError(
      'undecodable_video',
      `the video is truncated or corrupt: no frame decodes near its end${detail ? ` (${detail})` : ''}`,
    );
  }

  const quarterTurn = rotationOf(video) % 180 === 90;
  return {
    durationSec,
    width: quarterTurn ? codedHeight : codedWidth,
    height: quarterTurn ? codedWidth : codedHeight,
    frameRate: parseRate(video.avg_frame_rate) || parseRate(video.r_frame_rate),
    codec: video.codec_name ?? 'unknown',
    formatName: data.format.format_name ?? 'unknown',
  };
}
