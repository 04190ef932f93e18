/**
 * The video API as the upload page uses it: an XHR upload (for upload progress events), job status
 * polling and the timeline. Server errors arrive as `{error:{code,message}}`.
 */
import type { Emotion, EmotionScores } from '../../../contract/socket.ts';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface JobView {
  id: string;
  status: JobStatus;
  progress: number;
  durationSec?: number;
  sampledFps?: number;
  framesAnalyzed?: number;
  error?: string | { code?: string; message?: string };
}

export interface VideoTimeline {
  id: string;
  status: JobStatus;
  complete: boolean;
  durationSec: number;
  sampledFps: number;
  source: { width: number; height: number };
  frames: { t: number; faceCount: number }[];
  tracks: {
    trackId: number;
    samples: { t: number; emotions: EmotionScores; smoothed?: EmotionScores; dominant: Emotion }[];
    summary: { samples: number; firstT: number; lastT: number; timeOnScreenSec: number; meanEmotions: EmotionScores; dominant: Emotion; dominantShare: EmotionScores };
  }[];
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export const VIDEOS_URL = 'api/v1/videos';

function errorFrom(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (parsed.error?.message) return new ApiError(parsed.error.code ?? 'error', parsed.error.message, status);
  } catch {
    // not JSON: fall through
  }
  if (status === 404) return new ApiError('not_found', 'This server has no video API (is the video service enabled?)', status);
  if (status === 413) return new ApiError('payload_too_large', 'The file is larger than the server accepts.', status);
  return new ApiError('http_error', `The server answered ${status}.`, status);
}

export interface UploadHandle {
  done: Promise<{ id: string; status: JobStatus }>;
  abort(): void;
}

export function uploadVideo(file: File, onProgress: (fraction: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<{ id: string; status: JobStatus }>((resolve, reject) => {
    xhr.open('POST', VIDEOS_URL);
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 202 || xhr.status === 201 || xhr.status === 200) {
        onProgress(1);
        resolve(JSON.parse(xhr.responseText) as { id: string; status: JobStatus });
      } else {
        reject(errorFrom(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError('network', 'The server cannot be reached. Check the connection and try again.', 0)));
    xhr.addEventListener('abort', () => reject(new ApiError('aborted', 'The upload was cancelled.', 0)));
    const form = new FormData();
    form.append('video', file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

async function getJson<T>(url: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' } });
  } catch {
    throw new ApiError('network', 'The server cannot be reached.', 0);
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text);
  return JSON.parse(text) as T;
}

export function getJob(id: string): Promise<JobView> {
  return getJson<JobView>(`${VIDEOS_URL}/${encodeURIComponent(id)}`);
}

export function getTimeline(id: string): Promise<VideoTimeline> {
  return getJson<VideoTimeline>(timelineUrl(id, 'json'));
}

export function timelineUrl(id: string, format: 'json' | 'csv'): string {
  return `${VIDEOS_URL}/${encodeURIComponent(id)}/timeline?format=${format}`;
}

export function jobErrorText(error: JobView['error']): string {
  if (!error) return 'unknown error';
  return typeof error === 'string' ? error : (error.message ?? error.code ?? 'unknown error');
}
