/**
 * The socket.io protocol of Moodwire, shared by the server, the browser client and the tests.
 * Types only (no Node imports): the browser bundle imports this file. docs/protocol.md describes
 * the same events in prose. Every acknowledged event answers `Ack<T>`.
 */
import type { Emotion, EmotionScores } from '../pipeline/emotions.ts';

export type { Emotion, EmotionScores };

/** Stable error codes (a subset of server/errors.ts ERROR_CODES that can reach a socket). */
export type WireErrorCode =
  | 'bad_request'
  | 'invalid_payload'
  | 'invalid_session_id'
  | 'not_joined'
  | 'undecodable_image'
  | 'image_too_large'
  | 'frame_dropped'
  | 'queue_full'
  | 'not_ready'
  | 'not_found'
  | 'internal';

export interface WireError {
  code: WireErrorCode;
  message: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: WireError };

/** 1-64 characters of A-Z a-z 0-9 _ - */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface WireBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One face in a frame: box in source pixels, raw and smoothed probabilities (each sums to 1). */
export interface WireFace {
  /** stable across frames of one participant (or one video job) while the face stays in view */
  trackId: number;
  box: WireBox;
  /** detector confidence 0..1 */
  score: number;
  /** this frame's classifier output */
  emotions: EmotionScores;
  /** label of `smoothed` (does not flicker) */
  dominant: Emotion;
  /** exponential moving average of `emotions` over time for this track */
  smoothed: EmotionScores;
}

/** Milliseconds spent per stage of the server pipeline for one frame. */
export type FrameTimings = Partial<Record<'decode' | 'detect' | 'landmarks' | 'align' | 'classify' | 'total' | 'server', number>>;

export interface JoinRequest {
  sessionId: string;
  name?: string;
}
export interface JoinResult {
  participantId: string;
  sessionId: string;
  /** the others already in the session */
  participants: ParticipantInfo[];
}

export interface ParticipantInfo {
  participantId: string;
  name?: string;
}

/** `image`: JPEG, PNG or WebP bytes (ArrayBuffer, typed array or Blob in the browser; Buffer in Node). */
export interface FrameRequest {
  seq: number;
  /** client time of capture (ms); echoed in `emotions` events and timelines */
  ts?: number;
  image: ArrayBuffer | ArrayBufferView | Blob;
}
export interface FrameResult {
  seq: number;
  width: number;
  height: number;
  faces: WireFace[];
  timings: FrameTimings;
}

export interface EmotionsEvent {
  participantId: string;
  seq: number;
  ts: number;
  faces: WireFace[];
}

export interface TimelineRequest {
  /** only this participant (default: everyone in the session) */
  participantId?: string;
  /** only samples with ts > sinceTs */
  sinceTs?: number;
}

export interface TimelineSample {
  ts: number;
  seq: number;
  dominant: Emotion;
  smoothed: EmotionScores;
}

export interface TrackTimeline {
  trackId: number;
  samples: TimelineSample[];
}

export interface ParticipantTimeline {
  participantId: string;
  name?: string;
  /** false once the participant left; its timeline is kept while the session lives */
  present: boolean;
  tracks: TrackTimeline[];
}

export interface TimelineResult {
  sessionId: string;
  participants: ParticipantTimeline[];
}

export interface VideoSubscribeRequest {
  id: string;
}

/** Progress of a video job, forwarded from the video service to the room `video:<id>`. */
export interface VideoProgressEvent {
  id: string;
  status: string;
  progress: number;
  [key: string]: unknown;
}

export interface ClientToServerEvents {
  'session:join': (request: JoinRequest, ack: (result: Ack<JoinResult>) => void) => void;
  'session:leave': (request: Record<string, never>, ack: (result: Ack<Record<string, never>>) => void) => void;
  frame: (request: FrameRequest, ack: (result: Ack<FrameResult>) => void) => void;
  'timeline:get': (request: TimelineRequest, ack: (result: Ack<TimelineResult>) => void) => void;
  'video:subscribe': (request: VideoSubscribeRequest, ack: (result: Ack<{ id: string }>) => void) => void;
}

export interface ServerToClientEvents {
  /** a frame of another participant of the session was analysed */
  emotions: (event: EmotionsEvent) => void;
  'participant:joined': (event: ParticipantInfo) => void;
  'participant:left': (event: ParticipantInfo) => void;
  'video:progress': (event: VideoProgressEvent) => void;
}
