/**
 * One video file through the analysis: ffmpeg-decoded samples, the shared analyzer (retried while
 * it is full), one FaceTracker, in media order. At a scene cut (the sample's grey thumbnail differs
 * from the previous sample's by more than the threshold) every track ends, so no track joins the
 * people of two shots. The check needs samples close in time: camera motion between samples grows
 * with the gap (groups-pan.mp4, largest difference outside cuts: 10 at 5 samples/s, 24 at 2,
 * 36 at 1, 50 at 0.5; cuts 52-85), so below MIN_CUT_CHECK_FPS it is off. Used by the video
 * service's jobs and by the CLI.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../contract/errors.ts';
import { framesReceived } from '../metrics/metrics.ts';
import { greyThumbnail, thumbnailDifference } from '../pipeline/scene-cut.ts';
import { FaceTracker, type TrackerOptions } from '../pipeline/track.ts';
import type { ClassifiedFace, FrameAnalysis, FrameAnalyzer, RgbFrame } from '../pipeline/types.ts';
import type { FfmpegBinaries } from './binaries.ts';
import { analysisSize, decodeFrames } from './frames.ts';
import type { VideoProbe } from './probe.ts';
import type { VideoSample } from './store.ts';

export interface AnalyzeVideoOptions {
  file: string;
  probe: Pick<VideoProbe, 'width' | 'height' | 'durationSec'>;
  analyzer: FrameAnalyzer;
  binaries: FfmpegBinaries;
  /** Samples per second of media. */
  fps: number;
  /** Longer side of the frames sent to the analyzer. */
  maxSidePx: number;
  /** Frames of this video in the analyzer at once; ffmpeg is paused beyond it. */
  maxInFlightFrames: number;
  /** Track ageing and smoothing (the Config's `tracking` slice). */
  tracker: TrackerOptions;
  /**
   * Mean grey-level difference (0-255) of consecutive samples' 32x32 thumbnails above which a
   * sample is a scene cut: every track ends before it (SCENE_CUT_THRESHOLD).
   */
  sceneCutThreshold: number;
  signal?: AbortSignal;
  /**
   * Called in media order, once per sample (faces tracked, boxes in source pixels), with the
   * analysed picture (the scaled frame; source pixels = frame pixels x `scale`), e.g. for face thumbnails.
   */
  onSample: (sample: VideoSample, progress: number, picture: { frame: RgbFrame; scale: { x: number; y: number } }) => void;
}

/** Sampling rates below this cannot tell a cut from camera motion with a 32x32 thumbnail (see the header). */
export const MIN_CUT_CHECK_FPS = 2;

/** The worker pool and batcher refuse work when full; a file job waits for room instead of losing frames. */
const RETRYABLE = new Set(['queue_full', 'frame_dropped']);
const MAX_RETRIES = 40;

async function analyzeWithRetry(analyzer: FrameAnalyzer, frame: Parameters<FrameAnalyzer['analyzeRgb']>[0], signal?: AbortSignal): Promise<FrameAnalysis> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await analyzer.analyzeRgb(frame, 'video');
    } catch (error) {
      const retryable = error instanceof AppError && RETRYABLE.has(error.code) && attempt < MAX_RETRIES;
      if (!retryable || signal?.aborted) throw error;
      await sleep(Math.min(1000, 25 * 2 ** Math.min(attempt, 6)), undefined, { signal });
    }
  }
}

function toSourcePixels(face: ClassifiedFace, sx: number, sy: number): ClassifiedFace {
  if (sx === 1 && sy === 1) return face;
  return {
    ...face,
    box: { x: face.box.x * sx, y: face.box.y * sy, width: face.box.width * sx, height: face.box.height * sy },
    points: {
      leftEye: [face.points.leftEye[0] * sx, face.points.leftEye[1] * sy],
      rightEye: [face.points.rightEye[0] * sx, face.points.rightEye[1] * sy],
      mouth: [face.points.mouth[0] * sx, face.points.mouth[1] * sy],
    },
  };
}

/**
 * decode (ffmpeg, sampled, scaled) -> analyzer (shared workers and batcher, 'video' priority)
 * -> tracker, in media order. Up to `maxInFlightFrames` frames are analysed concurrently so the
 * workers stay busy; the tracker still sees them in order. Returns the number of samples.
 */
export async function analyzeVideoFile(options: AnalyzeVideoOptions): Promise<number> {
  const { probe, fps } = options;
  const size = analysisSize(probe.width, probe.height, options.maxSidePx);
  const sx = probe.width / size.width;
  const sy = probe.height / size.height;
  const tracker = new FaceTracker(options.tracker);
  const expectedSamples = Math.max(1, Math.ceil(probe.durationSec * fps));
  const inFlight: Array<{ index: number; timeSec: number; cut: boolean; frame: RgbFrame; analysis: Promise<FrameAnalysis> }> = [];
  let samples = 0;
  let previousThumbnail: Uint8Array | undefined;

  const completeOldest = async (): Promise<void> => {
    const head = inFlight.shift()!;
    const analysis = await head.analysis;
    // A new shot shows other people (or the same ones elsewhere): no track continues across a cut.
    if (head.cut) tracker.endAllTracks();
    const faces = tracker.update(
      analysis.faces.map((face) => toSourcePixels(face, sx, sy)),
      head.timeSec * 1000,
    );
    samples += 1;
    const progress = Math.min(0.999, Math.max(samples / expectedSamples, (head.timeSec + 1 / fps) / probe.durationSec));
    options.onSample({ index: head.index, t: head.timeSec, faces, skippedSmallFaces: analysis.skippedSmallFaces }, progress, { frame: head.frame, scale: { x: sx, y: sy } });
  };

  try {
    for await (const decoded of decodeFrames(options.file, {
      binaries: options.binaries,
      fps,
      width: size.width,
      height: size.height,
      signal: options.signal,
    })) {
      // Thumbnails are compared in media order, before the frame goes to the analyzer.
      const thumbnail = greyThumbnail(decoded.frame);
      const cut = fps >= MIN_CUT_CHECK_FPS && previousThumbnail !== undefined && thumbnailDifference(previousThumbnail, thumbnail) > options.sceneCutThreshold;
      previousThumbnail = thumbnail;
      // Once per sample, however often analyzeWithRetry offers it to a full analyzer.
      framesReceived.inc({ source: 'video' });
      const analysis = analyzeWithRetry(options.analyzer, decoded.frame, options.signal);
      analysis.catch(() => undefined); // awaited in order below; this only marks it handled
      inFlight.push({ index: decoded.index, timeSec: decoded.timeSec, cut, frame: decoded.frame, analysis });
      if (inFlight.length >= options.maxInFlightFrames) await completeOldest();
    }
    while (inFlight.length > 0) await completeOldest();
  } finally {
    // Frames still in the analyzer after a failure: let them settle, their results are dropped.
    await Promise.allSettled(inFlight.map((f) => f.analysis));
  }
  return samples;
}
