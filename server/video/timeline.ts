/**
 * A video job's samples as per-face timelines (grouped per track, summarised, rounded for the wire)
 * and as CSV rows. The shapes are VideoTimeline and its parts in contract/http.ts.
 */
import { EMOTIONS, dominantEmotion, type EmotionScores } from '../../contract/emotions.ts';
import type { VideoTimeline, VideoTrackSample, VideoTrackSummary, VideoTrackTimeline } from '../../contract/http.ts';
import type { VideoJob, VideoSample } from './store.ts';

function zeroScores(): EmotionScores {
  return Object.fromEntries(EMOTIONS.map((e) => [e, 0])) as EmotionScores;
}

function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function roundScores(scores: EmotionScores): EmotionScores {
  return Object.fromEntries(EMOTIONS.map((e) => [e, round(scores[e])])) as EmotionScores;
}

function summarise(samples: VideoTrackSample[], sampledFps: number): VideoTrackSummary {
  const mean = zeroScores();
  const share = zeroScores();
  for (const sample of samples) {
    for (const e of EMOTIONS) mean[e] += sample.emotions[e];
    share[sample.dominant] += 1;
  }
  for (const e of EMOTIONS) {
    mean[e] /= samples.length;
    share[e] /= samples.length;
  }
  return {
    samples: samples.length,
    firstT: samples[0]!.t,
    lastT: samples[samples.length - 1]!.t,
    timeOnScreenSec: round(samples.length / sampledFps, 3),
    meanEmotions: roundScores(mean),
    dominant: dominantEmotion(mean),
    dominantShare: roundScores(share),
  };
}

/** Group a job's samples per track (ordered by first appearance) and summarise each track. */
export function buildTimeline(
  job: Pick<VideoJob, 'id' | 'status' | 'durationSec' | 'sampledFps' | 'width' | 'height' | 'originalName' | 'analysis'>,
  samples: VideoSample[],
  thumbnails: { tracks: Set<number>; url: (trackId: number) => string } = { tracks: new Set(), url: () => '' },
): VideoTimeline {
  const byTrack = new Map<number, VideoTrackSample[]>();
  for (const sample of samples) {
    for (const face of sample.faces) {
      let list = byTrack.get(face.trackId);
      if (!list) byTrack.set(face.trackId, (list = []));
      list.push({
        t: round(sample.t, 3),
        box: { x: round(face.box.x, 1), y: round(face.box.y, 1), width: round(face.box.width, 1), height: round(face.box.height, 1) },
        score: round(face.score),
        emotions: roundScores(face.emotions),
        smoothed: roundScores(face.smoothed),
        dominant: face.dominant,
      });
    }
  }
  const tracks = [...byTrack.entries()].map(([trackId, list]): VideoTrackTimeline => ({
    trackId,
    ...(thumbnails.tracks.has(trackId) ? { thumbnail: thumbnails.url(trackId) } : {}),
    samples: list,
    summary: summarise(list, job.sampledFps),
  }));
  tracks.sort((a, b) => a.summary.firstT - b.summary.firstT || a.trackId - b.trackId);
  return {
    id: job.id,
    status: job.status,
    complete: job.status === 'done',
    durationSec: job.durationSec,
    sampledFps: job.sampledFps,
    source: { name: job.originalName, width: job.width, height: job.height },
    analysis: job.analysis,
    skippedSmallFaces: samples.reduce((n, s) => n + s.skippedSmallFaces, 0),
    frames: samples.map((s) => ({ t: round(s.t, 3), faceCount: s.faces.length })),
    tracks,
  };
}

export const CSV_COLUMNS = [
  'track_id', 't', 'x', 'y', 'width', 'height', 'score', 'dominant',
  ...EMOTIONS,
  ...EMOTIONS.map((e) => `smoothed_${e}`),
] as const;

/** One row per track and sample; every field is a number or an emotion name, so nothing needs quoting. */
export function timelineToCsv(timeline: VideoTimeline): string {
  const lines: string[] = [CSV_COLUMNS.join(',')];
  for (const track of timeline.tracks) {
    for (const s of track.samples) {
      lines.push(
        [
          track.trackId, s.t, s.box.x, s.box.y, s.box.width, s.box.height, s.score, s.dominant,
          ...EMOTIONS.map((e) => s.emotions[e]),
          ...EMOTIONS.map((e) => s.smoothed[e]),
        ].join(','),
      );
    }
  }
  return lines.join('\n') + '\n';
}

export const SUMMARY_CSV_COLUMNS = [
  'track_id', 'first_t', 'last_t', 'time_on_screen_sec', 'samples', 'dominant',
  ...EMOTIONS.map((e) => `mean_${e}`),
  ...EMOTIONS.map((e) => `dominant_share_${e}`),
] as const;

/** One row per track: its summary (times in seconds of media). */
export function timelineSummaryToCsv(timeline: VideoTimeline): string {
  const lines: string[] = [SUMMARY_CSV_COLUMNS.join(',')];
  for (const { trackId, summary: s } of timeline.tracks) {
    lines.push(
      [trackId, s.firstT, s.lastT, s.timeOnScreenSec, s.samples, s.dominant, ...EMOTIONS.map((e) => s.meanEmotions[e]), ...EMOTIONS.map((e) => s.dominantShare[e])].join(','),
    );
  }
  return lines.join('\n') + '\n';
}
