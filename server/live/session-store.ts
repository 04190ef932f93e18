/**
 * Where live sessions live: who is in which session, with which name and role, who is present,
 * and each participant's per-track timeline. Two implementations with the same bounds
 * (SessionLimits, JoinOptions): memory-sessions.ts (one node, the default) and redis-sessions.ts
 * (REDIS_URL: every node of the cluster shares them, limits hold across the cluster).
 *
 * A participant's face tracker and keyframe state (`tracker`, `stream`) are not shared: they stay
 * on the node that holds its socket, the only one that analyses its frames.
 */
import type { Face, ParticipantInfo, ParticipantTimeline } from '../../contract/socket.ts';
import type { KeyframePolicy } from '../pipeline/keyframes.ts';
import { FaceTracker } from '../pipeline/track.ts';
import { LiveStream } from './stream.ts';

export interface SessionLimits {
  maxSessions: number;
  maxParticipants: number;
  timelineMaxSamples: number;
  timelineMaxTracks: number;
  trackMaxAgeMs: number;
  smoothingTauMs: number;
  keyframe: KeyframePolicy;
  /** how long an empty session is kept */
  graceMs: number;
}

/** Who joins, beyond a name: the role its credential gives, and the address that may have to create the session. */
export interface JoinOptions {
  role: 'participant' | 'observer';
  address: string;
  maxSessionsPerAddress: number;
}

/** A participant whose socket this node holds. */
export interface LiveParticipant {
  readonly id: string;
  readonly name?: string;
  readonly sessionId: string;
  readonly role: 'participant' | 'observer';
  present: boolean;
  readonly tracker: FaceTracker;
  readonly stream: LiveStream;
}

/** A participant that came or went without its own socket event on this node (another node died, Redis came back). */
export interface PresenceChange {
  change: 'joined' | 'left';
  sessionId: string;
  participantId: string;
  name?: string;
}

export interface SessionStore {
  /** sessions known now (Redis: cluster-wide, as last counted) */
  readonly size: number;
  /** Adds a present participant; throws AppError session_full, too_many_sessions, rate_limited (or not_ready: Redis unreachable). */
  join(sessionId: string, name: string | undefined, options: JoinOptions): Promise<LiveParticipant>;
  /** Marks it left (its timeline stays while the session lives); an empty session is forgotten SESSION_GRACE_MS later. */
  leave(participant: LiveParticipant): Promise<void>;
  /** The other present participants of its session. */
  others(participant: LiveParticipant): Promise<ParticipantInfo[]>;
  timelines(sessionId: string, participantId?: string, sinceTs?: number): Promise<ParticipantTimeline[]>;
  hasParticipant(sessionId: string, participantId: string): Promise<boolean>;
  /** Appends a frame's faces to the participant's timeline (nothing once it left). */
  record(participant: LiveParticipant, faces: Face[], seq: number, ts: number): Promise<void>;
  /** Called with participants whose presence changed without an event of theirs on this node; the caller tells their session. */
  onPresence(listener: (changes: PresenceChange[]) => void): void;
  /** Forgets this node's part (server shutdown). */
  close(): Promise<void>;
}

/** The node-local half of a participant: its tracker and keyframe schedule. */
export function localParticipant(limits: SessionLimits, fields: { id: string; name: string | undefined; sessionId: string; role: 'participant' | 'observer' }): LiveParticipant {
  return {
    id: fields.id,
    ...(fields.name === undefined ? {} : { name: fields.name }),
    sessionId: fields.sessionId,
    role: fields.role,
    present: true,
    tracker: new FaceTracker({ maxAgeMs: limits.trackMaxAgeMs, smoothingTauMs: limits.smoothingTauMs }),
    stream: new LiveStream(limits.keyframe),
  };
}
