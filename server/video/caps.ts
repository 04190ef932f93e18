/**
 * What one video job may cost: its probed duration and the frames it would analyse at its
 * sampling rate. Checked after ffprobe, before the job is created (issue 20: a 16x16 ten-hour
 * video is tiny to upload and hours to analyse).
 */
import { AppError } from '../../contract/errors.ts';
import type { VideoConfig } from '../config.ts';

export type VideoCaps = Pick<VideoConfig, 'maxDurationSec' | 'maxFramesPerJob'>;

function seconds(value: number): string {
  return `${Number(value.toFixed(1))} s`;
}

/** Throws 413 video_too_long when the video is longer than the cap or would sample too many frames; the message gives the limits. */
export function checkVideoCaps(durationSec: number, sampledFps: number, caps: VideoCaps): void {
  if (durationSec > caps.maxDurationSec) {
    throw new AppError(
      'video_too_long',
      `the video lasts ${seconds(durationSec)}, longer than the ${seconds(caps.maxDurationSec)} a job may take (VIDEO_MAX_DURATION_SEC)`,
    );
  }
  const frames = Math.ceil(durationSec * sampledFps);
  if (frames > caps.maxFramesPerJob) {
    const longest = caps.maxFramesPerJob / sampledFps;
    throw new AppError(
      'video_too_long',
      `the video would need ${frames} frames analysed at ${sampledFps} frames/s, more than the ${caps.maxFramesPerJob} a job may take ` +
        `(VIDEO_MAX_FRAMES_PER_JOB): send at most ${seconds(longest)} at this rate, or a lower fps`,
    );
  }
}
