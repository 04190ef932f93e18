/**
 * One error type for everything the server refuses. `code` is stable (clients switch on it),
 * `message` is for people. It is translated to a socket ack or an HTTP status only at the edge.
 */
export const ERROR_CODES = {
  bad_request: 400,
  invalid_payload: 400,
  invalid_session_id: 400,
  not_joined: 409,
  /** the session already has its maximum of present participants */
  session_full: 409,
  /** the server already holds its maximum of live sessions */
  too_many_sessions: 503,
  unsupported_media_type: 415,
  undecodable_image: 422,
  undecodable_video: 422,
  image_too_large: 413,
  payload_too_large: 413,
  frame_dropped: 503,
  queue_full: 503,
  not_ready: 503,
  not_found: 404,
  /** no credential, or one that is not valid (an unknown API key, a bad or expired invite) */
  unauthorized: 401,
  /** a valid credential that does not allow this (an invite for another session, an observer's frame, a foreign Origin) */
  forbidden: 403,
  /** one client sent too much: events per second, connections or sessions per address, uploads, jobs, subscriptions */
  rate_limited: 429,
  /** a video longer (or with more frames to analyse) than one job may take */
  video_too_long: 413,
  /** the server is shutting down: no new work */
  shutting_down: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes that can reach a socket.io client (the rest belong to HTTP routes only). */
export type WireErrorCode = Exclude<ErrorCode, 'unsupported_media_type' | 'undecodable_video' | 'payload_too_large' | 'video_too_long'>;

export class AppError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'AppError';
    this.code = code;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The code a socket client receives: HTTP-only codes become `bad_request`. */
export function toWireErrorCode(code: ErrorCode): WireErrorCode {
  switch (code) {
    case 'unsupported_media_type':
    case 'undecodable_video':
    case 'payload_too_large':
    case 'video_too_long':
      return 'bad_request';
    default:
      return code;
  }
}

/** Any thrown value as an AppError; unknown failures become `internal` without leaking internals. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('internal', 'internal error');
}
