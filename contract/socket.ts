/**
 * The socket.io protocol of Moodwire, shared by the server, the browser client and the tests.
 * What clients send is defined once, as zod schemas in socket-schemas.ts (the server validates
 * with them); the request types here are inferred from those schemas. What the server sends is
 * typed here. Type-only imports apart from the session id pattern, so the browser bundle stays
 * free of zod. docs/protocol.md describes the same events in prose; every acknowledged event
 * answers `Ack<T>`.
 */
import type { z } from 'zod';
import type { Emotion, EmotionScores } from './emotions.ts';
import type { WireErrorCode } from './errors.ts';
import type { Box } from './geometry.ts';
import type { frameSchema, joinSchema, leaveSchema, timelineSchema, videoSubscribeSchema } from './socket-schemas.ts';

export type { Box, Emotion, EmotionScores, WireErrorCode };

export interface WireError {
  code: WireErrorCode;
  message: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: WireError };

/** 1-64 characters of A-Z a-z 0-9 _ - */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** One face in a frame, tracked and smoothed: what live frames, uploads and video samples return. */
export interface Face {
  /** stable across frames of one participant (or one video job) while the face stays in view */
  trackId: number;
  /** source pixels */
  box: Box;
  /** detector confidence 0..1 */
  score: number;
  /** this frame's classifier output (sums to 1) */
  emotions: EmotionScores;
  /** the label to display: the top of `smoothed`, with hysteresis (see docs/protocol.md) */
  dominant: Emotion;
  /** exponential moving average of `emotions` over time for this track (sums to 1) */
  smoothed: EmotionScores;
  /** `detection`: a detector found the face on this frame; `tracking`: followed from the previous frame (live streams) */
  origin: 'detection' | 'tracking';
  /** true: show no label (the track's first sample, or `smoothed[dominant]` below 0.35) */
  uncertain: boolean;
}

/** The stages a frame's time is reported for; `server` is the whole time on the server, queues included. */
export const TIMING_KEYS = ['decode', 'detect', 'track', 'landmarks', 'align', 'classify', 'total', 'server'] as const;
export type TimingKey = (typeof TIMING_KEYS)[number];
/** Milliseconds spent per stage of the server pipeline for one frame. */
export type FrameTimings = Partial<Record<TimingKey, number>>;

export type JoinRequest = z.input<typeof joinSchema>;
export type LeaveRequest = z.input<typeof leaveSchema>;
/** `image`: JPEG, PNG or WebP bytes (ArrayBuffer or Uint8Array; a Buffer in Node). */
export type FrameRequest = z.input<typeof frameSchema>;
export type TimelineRequest = z.input<typeof timelineSchema>;
export type VideoSubscribeRequest = z.input<typeof videoSubscribeSchema>;

export interface ParticipantInfo {
  participantId: string;
  name?: string;
}

export interface JoinResult {
  participantId: string;
  sessionId: string;
  /** the others already in the session */
  participants: ParticipantInfo[];
  /** `observer`s (joined with an observer invite) receive emotions and timelines; their frames are refused with forbidden */
  role: 'participant' | 'observer';
}

export interface FrameResult {
  seq: number;
  width: number;
  height: number;
  faces: Face[];
  timings: FrameTimings;
}

export interface EmotionsEvent {
  participantId: string;
  seq: number;
  ts: number;
  faces: Face[];
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

/** Progress of a video job, sent to the sockets that subscribed to it. */
export interface VideoProgressEvent {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  /** 0..1 */
  progress: number;
  durationSec?: number;
  sampledFps?: number;
  error?: string;
}

/** The socket.io handshake's `auth`: an invite token or an API key (needed unless the server serves loopback clients without keys). */
export interface HandshakeAuth {
  token?: string;
}

/** `data` of the connect_error a refused handshake gives the client (`error.data`). */
export interface ConnectErrorData {
  code: 'unauthorized' | 'forbidden' | 'rate_limited';
  message: string;
}

export interface ClientToServerEvents {
  'session:join': (request: JoinRequest, ack: (result: Ack<JoinResult>) => void) => void;
  'session:leave': (request: LeaveRequest, ack: (result: Ack<Record<never, never>>) => void) => void;
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
