/**
 * Every Prometheus metric of the server, defined once. Prefix `moodwire_`, seconds for time,
 * `_total` for counters. Modules import the metric they record; nothing else creates metrics.
 */
import client from 'prom-client';
import { ERROR_CODES } from '../../contract/errors.ts';
import type { FrameSource } from '../pipeline/types.ts';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'moodwire_' });

/** 1 ms .. 5 s: real-time latencies live in the low buckets, stalls show in the high ones. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5];

export const stageSeconds = new client.Histogram({
  name: 'moodwire_stage_duration_seconds',
  help: 'Time spent in one pipeline stage for one frame (classify: the frame waits for its batch).',
  labelNames: ['stage', 'source'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const frameLatencySeconds = new client.Histogram({
  name: 'moodwire_frame_latency_seconds',
  help: 'End-to-end server time from frame receipt to its answer.',
  labelNames: ['source'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const batchSize = new client.Histogram({
  name: 'moodwire_batch_size',
  help: 'Faces per classifier batch (with CLASSIFY_BATCHING off: the faces of one frame).',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128],
  registers: [registry],
});

export const framesLocated = new client.Counter({
  name: 'moodwire_frames_located_total',
  help: 'Frames by how their faces were found: a keyframe (by: planned, lost, cut) or tracking from the previous frame.',
  labelNames: ['source', 'by'] as const,
  registers: [registry],
});

export const facesFollowed = new client.Counter({
  name: 'moodwire_faces_followed_total',
  help: 'Live faces followed from the previous frame, by how: motion (a patch match) or crop (the crop detector).',
  labelNames: ['by'] as const,
  registers: [registry],
});

export const batchQueueWaitSeconds = new client.Histogram({
  name: 'moodwire_batch_queue_wait_seconds',
  help: 'Time a face waits in the dynamic batcher before its batch runs (with CLASSIFY_BATCHING off: a frame waits for a worker).',
  labelNames: ['priority'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const framesReceived = new client.Counter({
  name: 'moodwire_frames_received_total',
  help: 'Frames that arrived, by source (live, image, video), counted where they arrive: also those refused (invalid, not joined, too large, not ready, dropped).',
  labelNames: ['source'] as const,
  registers: [registry],
});

export const framesProcessed = new client.Counter({
  name: 'moodwire_frames_processed_total',
  help: 'Frames analysed to the end, by source.',
  labelNames: ['source'] as const,
  registers: [registry],
});

export const framesDropped = new client.Counter({
  name: 'moodwire_frames_dropped_total',
  help: 'Frames not analysed, by reason (superseded, queue_full, error, ...).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const facesClassified = new client.Counter({
  name: 'moodwire_faces_classified_total',
  help: 'Faces classified, by source.',
  labelNames: ['source'] as const,
  registers: [registry],
});

export const errorsTotal = new client.Counter({
  name: 'moodwire_errors_total',
  help: 'Requests refused or failed, by error code.',
  labelNames: ['code'] as const,
  registers: [registry],
});

export const videoJobsTotal = new client.Counter({
  name: 'moodwire_video_jobs_total',
  help: 'Video jobs finished, by outcome (done, failed, deleted).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const connectedSockets = new client.Gauge({
  name: 'moodwire_connected_sockets',
  help: 'socket.io connections open now.',
  registers: [registry],
});

export const activeSessions = new client.Gauge({
  name: 'moodwire_sessions',
  help: 'Live sessions with at least one participant.',
  registers: [registry],
});

export const queueDepth = new client.Gauge({
  name: 'moodwire_queue_depth',
  help: 'Items waiting, by queue (batcher_live, batcher_file, frames, video_jobs).',
  labelNames: ['queue'] as const,
  registers: [registry],
});

export const runningVideoJobs = new client.Gauge({
  name: 'moodwire_video_jobs_running',
  help: 'Video jobs being analysed now.',
  registers: [registry],
});

export const liveTensors = new client.Gauge({
  name: 'moodwire_tf_tensors',
  help: 'Live tfjs tensors summed over the inference worker threads (a growing value means a leak).',
  registers: [registry],
});

export const modelInfo = new client.Gauge({
  name: 'moodwire_model_info',
  help: 'Always 1; labels name the loaded emotion model and the backend that runs it.',
  labelNames: ['model_version', 'backend', 'detector'] as const,
  registers: [registry],
});

export const nodeInfo = new client.Gauge({
  name: 'moodwire_node_info',
  help: 'Always 1; node_id names this node (NODE_ID), cluster is redis (REDIS_URL set) or off.',
  labelNames: ['node_id', 'cluster'] as const,
  registers: [registry],
});

export const redisUp = new client.Gauge({
  name: 'moodwire_redis_up',
  help: 'With REDIS_URL: 1 while this node reaches Redis, 0 while it does not (cross-node sessions and broadcasts degraded). Absent without REDIS_URL.',
  labelNames: ['node_id'] as const,
  registers: [registry],
});

/** With REDIS_URL: where the cluster-wide video queue counts come from (set by the video service while started). */
let videoQueueSource: { nodeId: string; counts: () => Promise<{ waiting: number; active: number } | undefined> } | undefined;

export function setVideoQueueSource(source: typeof videoQueueSource): void {
  videoQueueSource = source;
  if (!source) {
    videoJobsWaiting.reset();
    videoJobsActive.reset();
  }
}

/** BullMQ's counts, read once per scrape (both gauges share one read); at most 1 s, else the series are left out of this scrape. */
let pendingCounts: Promise<{ waiting: number; active: number } | undefined> | undefined;
async function scrapeQueueCounts(): Promise<{ waiting: number; active: number } | undefined> {
  const source = videoQueueSource;
  if (!source) return undefined;
  pendingCounts ??= Promise.race([
    source.counts().catch(() => undefined),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref()),
  ]).finally(() => setTimeout(() => (pendingCounts = undefined), 100).unref());
  return pendingCounts;
}

export const videoJobsWaiting = new client.Gauge({
  name: 'moodwire_video_jobs_waiting',
  help: 'With REDIS_URL: video jobs waiting in the BullMQ queue, cluster-wide (every node reports the same number; node_id says which node answered).',
  labelNames: ['node_id'] as const,
  registers: [registry],
  async collect() {
    const counts = await scrapeQueueCounts();
    this.reset();
    if (counts && videoQueueSource) this.set({ node_id: videoQueueSource.nodeId }, counts.waiting);
  },
});

export const videoJobsActive = new client.Gauge({
  name: 'moodwire_video_jobs_active',
  help: 'With REDIS_URL: video jobs being run by some node, cluster-wide, from BullMQ (this node\'s own: moodwire_video_jobs_running).',
  labelNames: ['node_id'] as const,
  registers: [registry],
  async collect() {
    const counts = await scrapeQueueCounts();
    this.reset();
    if (counts && videoQueueSource) this.set({ node_id: videoQueueSource.nodeId }, counts.active);
  },
});

/**
 * Known label values start at 0, so a rate() or increase() over them answers 0 instead of
 * "no data" before the first event, and the first event itself shows in rate() (a series born
 * at 1 has no increase). Histograms (stages) appear when first recorded.
 */
export const KNOWN_SOURCES = ['live', 'image', 'video'] as const satisfies readonly FrameSource[];
export const KNOWN_DROP_REASONS = ['superseded', 'disconnected', 'queue_full', 'error', 'invalid'] as const;
export const KNOWN_VIDEO_OUTCOMES = ['done', 'failed', 'deleted'] as const;
export const KNOWN_QUEUES = ['batcher_live', 'batcher_file', 'frames', 'video_jobs'] as const;

for (const source of KNOWN_SOURCES) {
  framesReceived.inc({ source }, 0);
  framesProcessed.inc({ source }, 0);
  facesClassified.inc({ source }, 0);
}
for (const code of Object.keys(ERROR_CODES)) errorsTotal.inc({ code }, 0);
for (const reason of KNOWN_DROP_REASONS) framesDropped.inc({ reason }, 0);
for (const outcome of KNOWN_VIDEO_OUTCOMES) videoJobsTotal.inc({ outcome }, 0);
for (const queue of KNOWN_QUEUES) queueDepth.set({ queue }, 0);
