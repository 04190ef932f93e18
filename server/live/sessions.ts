/**
 * Live sessions: who is in which session, each participant's face tracker and timelines.
 * Bounded: at most `maxSessions` sessions and `maxParticipants` present participants a session;
 * timelines of participants who left are kept (up to `maxParticipants` of them) until the
 * session empties, then the session is forgotten.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../contract/errors.ts';
import { activeSessions } from '../metrics/metrics.ts';
import type { KeyframePolicy } from '../pipeline/keyframes.ts';
import { FaceTracker } from '../pipeline/track.ts';
import { LiveStream } from './stream.ts';
import type { ParticipantInfo, ParticipantTimeline } from '../../contract/socket.ts';
import { ParticipantTimelines } from './timeline.ts';

export interface SessionLimits {
  maxSessions: number;
  maxParticipants: number;
  timelineMaxSamples: number;
  timelineMaxTracks: number;
  trackMaxAgeMs: number;
  smoothingTauMs: number;
  keyframe: KeyframePolicy;
}

export interface Participant {
  id: string;
  name?: string;
  sessionId: string;
  present: boolean;
  tracker: FaceTracker;
  stream: LiveStream;
  timelines: ParticipantTimelines;
}

interface Session {
  id: string;
  participants: Map<string, Participant>;
}

export class SessionRegistry {
  readonly #limits: SessionLimits;
  readonly #sessions = new Map<string, Session>();

  constructor(limits: SessionLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#sessions.size;
  }

  join(sessionId: string, name: string | undefined): Participant {
    let session = this.#sessions.get(sessionId);
    if (!session) {
      if (this.#sessions.size >= this.#limits.maxSessions) {
        throw new AppError('too_many_sessions', `the server holds its maximum of ${this.#limits.maxSessions} sessions`);
      }
      session = { id: sessionId, participants: new Map() };
      this.#sessions.set(sessionId, session);
    }
    const present = [...session.participants.values()].filter((p) => p.present).length;
    if (present >= this.#limits.maxParticipants) {
      if (session.participants.size === 0) this.#sessions.delete(sessionId);
      throw new AppError('session_full', `session ${sessionId} is full (${this.#limits.maxParticipants} participants)`);
    }
    const participant: Participant = {
      id: randomUUID(),
      name,
      sessionId,
      present: true,
      tracker: new FaceTracker({ maxAgeMs: this.#limits.trackMaxAgeMs, smoothingTauMs: this.#limits.smoothingTauMs }),
      stream: new LiveStream(this.#limits.keyframe),
      timelines: new ParticipantTimelines(this.#limits.timelineMaxSamples, this.#limits.timelineMaxTracks),
    };
    session.participants.set(participant.id, participant);
    this.#forgetOldLeavers(session);
    activeSessions.set(this.#sessions.size);
    return participant;
  }

  leave(participant: Participant): void {
    const session = this.#sessions.get(participant.sessionId);
    if (!session) return;
    participant.present = false;
    if (![...session.participants.values()].some((p) => p.present)) this.#sessions.delete(session.id);
    else this.#forgetOldLeavers(session);
    activeSessions.set(this.#sessions.size);
  }

  others(participant: Participant): ParticipantInfo[] {
    const session = this.#sessions.get(participant.sessionId);
    if (!session) return [];
    return [...session.participants.values()]
      .filter((p) => p.present && p.id !== participant.id)
      .map((p) => ({ participantId: p.id, ...(p.name ? { name: p.name } : {}) }));
  }

  timelines(sessionId: string, participantId?: string, sinceTs?: number): ParticipantTimeline[] {
    const session = this.#sessions.get(sessionId);
    if (!session) return [];
    return [...session.participants.values()]
      .filter((p) => participantId === undefined || p.id === participantId)
      .map((p) => ({
        participantId: p.id,
        ...(p.name ? { name: p.name } : {}),
        present: p.present,
        tracks: p.timelines.snapshot(sinceTs),
      }));
  }

  hasParticipant(sessionId: string, participantId: string): boolean {
    return this.#sessions.get(sessionId)?.participants.has(participantId) ?? false;
  }

  #forgetOldLeavers(session: Session): void {
    const leavers = [...session.participants.values()].filter((p) => !p.present);
    for (const p of leavers.slice(0, Math.max(0, leavers.length - this.#limits.maxParticipants))) session.participants.delete(p.id);
  }
}
