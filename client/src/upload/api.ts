/**
 * The video API as the upload page uses it: an XHR upload (for upload progress events), job status
 * polling and the timeline. The shapes are those of contract/http.ts, imported as types only so
 * that zod stays out of the bundle. Server errors arrive as `{error:{code,message}}`.
 */
import type { HttpError, VideoAccepted, VideoJobView, VideoTimeline } from '../../../contract/http.ts';

/** What the page follows of a job: the fields that both GET /api/v1/videos/:id and `video:progress` carry. */
export type JobState = Pick<VideoJobView, 'id' | 'status' | 'progress' | 'error'>;

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
    // Answers from something other than Moodwire (a proxy) may have any shape.
    const parsed = JSON.parse(body) as Partial<HttpError>;
    if (parsed.error?.message) return new ApiError(parsed.error.code ?? 'error', parsed.error.message, status);
  } catch {
    // not JSON: fall through
  }
  if (status === 404) return new ApiError('not_found', 'This server has no video API (is the video service enabled?)', status);
  if (status === 413) return new ApiError('payload_too_large', 'The file is larger than the server accepts.', status);
  return new ApiError('http_error', `The server answered ${status}.`, status);
}

export interface UploadHandle {
  done: Promise<VideoAccepted>;
  abort(): void;
}

export function uploadVideo(file: File, onProgress: (fraction: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<VideoAccepted>((resolve, reject) => {
    xhr.open('POST', VIDEOS_URL);
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 202 || xhr.status === 201 || xhr.status === 200) {
        onProgress(1);
        resolve(JSON.parse(xhr.responseText) as VideoAccepted);
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

export function getJob(id: string): Promise<VideoJobView> {
  return getJson<VideoJobView>(`${VIDEOS_URL}/${encodeURIComponent(id)}`);
}

export function getTimeline(id: string): Promise<VideoTimeline> {
  return getJson<VideoTimeline>(timelineUrl(id, 'json'));
}

export function timelineUrl(id: string, format: 'json' | 'csv'): string {
  return `${VIDEOS_URL}/${encodeURIComponent(id)}/timeline?format=${format}`;
}

export function jobErrorText(error: JobState['error']): string {
  return error || 'unknown error';
}
