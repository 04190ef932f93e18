/** Errors of the HTTP API as the pages show them: `{error:{code,message}}` from the server, or a fallback. */
import type { HttpError } from '../../../contract/http.ts';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function errorFrom(status: number, body: string): ApiError {
  try {
    // Answers from something other than Moodwire (a proxy) may have any shape.
    const parsed = JSON.parse(body) as Partial<HttpError>;
    if (parsed.error?.message) return new ApiError(parsed.error.code ?? 'error', parsed.error.message, status);
  } catch {
    // not JSON: fall through
  }
  if (status === 401) return new ApiError('unauthorized', 'This server needs an API key.', status);
  if (status === 404) return new ApiError('not_found', 'This server has no video API (is the video service enabled?)', status);
  if (status === 413) return new ApiError('payload_too_large', 'The file is larger than the server accepts.', status);
  return new ApiError('http_error', `The server answered ${status}.`, status);
}

/** Whether the server asked for a credential (401): the pages then ask for an API key. */
export function isUnauthorized(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 401;
}
