/**
 * The video API as the upload page uses it: an XHR upload (for upload progress events), job status
 * polling and the timeline. The shapes are those of contract/http.ts, imported as types only so
 * that zod stays out of the bundle. Server errors arrive as `{error:{code,message}}`. Every call
 * takes the request headers that carry the page's credential (`Authorization: Bearer <API key>`,
 * or none where the server serves this machine without keys).
 */
import type { VideoAccepted, VideoJobList, VideoJobView, VideoTimeline } from '../../../contract/http.ts';
import { ApiError, errorFrom } from '../shared/api-error.ts';

/** What the page follows of a job: the fields that both GET /api/v1/videos/:id and `video:progress` carry. */
export type JobState = Pick<VideoJobView, 'id' | 'status' | 'progress' | 'error'>;

export { ApiError };

export const VIDEOS_URL = 'api/v1/videos';

export interface UploadHandle {
  done: Promise<VideoAccepted>;
  abort(): void;
}

/**
 * `fps`: frames analysed per second of video (undefined: the server's VIDEO_SAMPLE_FPS);
 * `thumbnails`: keep a small picture of each face track with the results.
 */
export function uploadVideo(file: File, onProgress: (fraction: number) => void, headers: Record<string, string> = {}, options: { fps?: number; thumbnails?: boolean } = {}): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<VideoAccepted>((resolve, reject) => {
    xhr.open('POST', VIDEOS_URL);
    xhr.responseType = 'text';
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
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
    if (options.fps !== undefined) form.append('fps', String(options.fps));
    if (options.thumbnails) form.append('thumbnails', 'true');
    form.append('video', file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

async function getJson<T>(url: string, headers: Record<string, string>): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { ...headers, accept: 'application/json' } });
  } catch {
    throw new ApiError('network', 'The server cannot be reached.', 0);
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text);
  return JSON.parse(text) as T;
}

/**
 * Whether the server accepts these headers for the video API, asked before a file is sent: a
 * refused upload would otherwise send the whole file first (or be cut off mid-way and look like
 * a network error). Any answer but 401 means yes (the API checks credentials before routes).
 */
export async function checkAccess(headers: Record<string, string>): Promise<void> {
  let response: Response;
  try {
    response = await fetch(`${VIDEOS_URL}?limit=1`, { headers: { ...headers, accept: 'application/json' } });
  } catch {
    throw new ApiError('network', 'The server cannot be reached. Check the connection and try again.', 0);
  }
  const text = await response.text();
  if (response.status === 401) throw errorFrom(response.status, text);
}

/** The caller's jobs, newest first (GET /api/v1/videos). */
export async function listJobs(headers: Record<string, string>, limit = 10): Promise<VideoJobView[]> {
  return (await getJson<VideoJobList>(`${VIDEOS_URL}?limit=${limit}`, headers)).jobs;
}

export function getJob(id: string, headers: Record<string, string> = {}): Promise<VideoJobView> {
  return getJson<VideoJobView>(`${VIDEOS_URL}/${encodeURIComponent(id)}`, headers);
}

export function getTimeline(id: string, headers: Record<string, string> = {}): Promise<VideoTimeline> {
  return getJson<VideoTimeline>(timelineUrl(id, 'json'), headers);
}

/** The timeline file as a Blob, fetched with the credential (a plain link cannot send one). */
export async function fetchTimelineFile(id: string, format: 'json' | 'csv' | 'summary-csv', headers: Record<string, string>): Promise<Blob> {
  let response: Response;
  try {
    response = await fetch(timelineUrl(id, format), { headers });
  } catch {
    throw new ApiError('network', 'The server cannot be reached.', 0);
  }
  if (!response.ok) throw errorFrom(response.status, await response.text());
  return response.blob();
}

/** A track's thumbnail as an object URL (fetched with the credential, which an <img> cannot send). */
export async function fetchThumbnail(path: string, headers: Record<string, string>): Promise<string> {
  const response = await fetch(path, { headers });
  if (!response.ok) throw errorFrom(response.status, await response.text());
  return URL.createObjectURL(await response.blob());
}

export function timelineUrl(id: string, format: 'json' | 'csv' | 'summary-csv'): string {
  return `${VIDEOS_URL}/${encodeURIComponent(id)}/timeline?format=${format}`;
}

export function jobErrorText(error: JobState['error']): string {
  return error || 'unknown error';
}
