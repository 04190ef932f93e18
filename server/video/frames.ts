import ffmpeg from 'fluent-ffmpeg';
import type { Readable } from 'node:stream';
import { AppError } from '../../contract/errors.ts';
import type { RgbFrame } from '../pipeline/types.ts';
import type { FfmpegBinaries } from './binaries.ts';
import { publicFfmpegMessage } from './ffmpeg-messages.ts';

/** One sampled frame, timestamped in media time. */
export interface DecodedFrame {
  /** 0-based index of the sample in this decode run (not the source frame number). */
  index: number;
  /** Media time in seconds from the start of the video. */
  timeSec: number;
  frame: RgbFrame;
}

export interface DecodeOptions {
  binaries: FfmpegBinaries;
  /** Samples per second of media (ffmpeg `fps` filter). */
  fps: number;
  /** Output frame size; the source is scaled to it. */
  width: number;
  height: number;
  signal?: AbortSignal;
}

/** Analysis size: the longer side at most `maxSide`, both sides even, aspect kept. */
export function analysisSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const even = (v: number) => Math.max(2, 2 * Math.round((v * scale) / 2));
  return { width: even(width), height: even(height) };
}

/**
 * Decode `file` with ffmpeg into raw RGB frames sampled at `fps`, piped (no file per frame) and
 * split in memory. Iterating is the backpressure: while the consumer does not pull, the pipe fills
 * and ffmpeg blocks. Leaving the loop early, or aborting the signal, kills ffmpeg; once the signal
 * is aborted no further frame is yielded (frames already in the pipe are dropped), so a job stopped
 * mid-way (DELETE, shutdown) ends without analysing them.
 */
export async function* decodeFrames(file: string, options: DecodeOptions): AsyncGenerator<DecodedFrame> {
  const { width, height, fps } = options;
  const frameBytes = width * height * 3;
  const command = ffmpeg(file)
    .setFfmpegPath(options.binaries.ffmpegPath)
    .inputOptions(['-v', 'error', '-nostdin'])
    .outputOptions([
      '-map', '0:v:0',
      '-vf', `fps=${fps},scale=${width}:${height}:flags=bilinear`,
      '-f', 'rawvideo',
      '-pix_fmt', 'rgb24',
    ]);

  let failure: Error | undefined;
  let ended = false;
  const done = new Promise<void>((resolve) => {
    command.on('error', (error: Error, _stdout: string | null, stderr: string | null) => {
      ended = true;
      // No server path in the message: it becomes the job's public `error`.
      failure = new AppError('undecodable_video', `ffmpeg failed while decoding: ${publicFfmpegMessage(stderr || error.message, file)}`);
      resolve();
    });
    command.on('end', () => {
      ended = true;
      resolve();
    });
  });
  const output = command.pipe() as unknown as Readable;
  // The command reports errors; the pass-through stream only needs to end.
  command.on('error', () => output.destroy());

  const onAbort = () => command.kill('SIGKILL');
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    let pending = Buffer.allocUnsafe(frameBytes);
    let filled = 0;
    let index = 0;
    try {
      for await (const chunk of output as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length) {
          const take = Math.min(frameBytes - filled, chunk.length - offset);
          chunk.copy(pending, filled, offset, offset + take);
          filled += take;
          offset += take;
          if (filled === frameBytes) {
            if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
            // Each frame gets its own buffer: several frames are in the analyzer at once.
            const data = new Uint8Array(pending.buffer, pending.byteOffset, frameBytes);
            yield { index, timeSec: index / fps, frame: { data, width, height } };
            index += 1;
            pending = Buffer.allocUnsafe(frameBytes);
            filled = 0;
          }
        }
      }
    } catch (error) {
      // A destroyed pipe after an ffmpeg error: the command's error says more.
      if (!failure && !options.signal?.aborted) throw error;
    }
    await done;
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    if (failure) throw failure;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (!ended) {
      command.kill('SIGKILL');
      await done;
    }
  }
}
