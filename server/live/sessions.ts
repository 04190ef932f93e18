/**
 * Live sessions of one node (MemorySessionStore; REDIS_URL uses redis-sessions.ts): who is in which session, each participant's face tracker and timelines.
 * Bounded: at most `maxSessions` sessions, `maxParticipants` present participants a session, and
 * `maxSessionsPerAddress` existing sessions created from one client address; timelines of
 * participants who left are kept (up to `maxParticipants` of them) until the session empties.
 * An empty session, timelines included, is forgotten `graceMs` later (a page that reconnects
 * within the grace finds it), unless someone joins it again first.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../contract/errors.ts';
import { activeSessions } from '../metrics/metrics.ts';
import type { JoinOptions, SessionLimits } from './session-store.ts';
import { FaceTracker } from '../pipeline/track.ts';
import { LiveStream } from './stream.ts';
import type { ParticipantInfo, ParticipantTimeline } from '../../contract/socket.ts';
import { ParticipantTimelines } from './timeline.ts';

export type { JoinOptions, SessionLimits } from './session-store.ts';

export interface Participant {
  id: string;
  name?: string;
  sessionId: string;
  role: 'participant' | 'observer';
  present: boolean;
  tracker: FaceTracker;
  stream: LiveStream;
  timelines: ParticipantTimelines;
}

interface Session {
  id: string;
  /** the client address that created it (MAX_SESSIONS_PER_ADDRESS) */
  createdBy: string;
  participants: Map<string, Participant>;
  /** set while the session is empty: forgets it when the grace ends */
  expiry?: NodeJS.Timeout;
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

  join(sessionId: string, name: string | undefined, options: JoinOptions): Participant {
    let session = this.#sessions.get(sessionId);
    if (!session) {
      if (this.#sessions.size >= this.#limits.maxSessions) {
        throw new AppError('too_many_sessions', `the server holds its maximum of ${this.#limits.maxSessions} sessions`);
      }
      const created = [...this.#sessions.values()].filter((s) => s.createdBy === options.address).length;
      if (created >= options.maxSessionsPerAddress) {
        throw new AppError('rate_limited', `this address already created ${created} sessions that still exist (at most ${options.maxSessionsPerAddress})`);
      }
      session = { id: sessionId, createdBy: options.address, participants: new Map() };
      this.#sessions.set(sessionId, session);
    }
    const present = [...session.participants.values()].filter((p) => p.present).length;
    if (present >= this.#limits.maxParticipants) {
      if (session.participants.size === 0) this.#sessions.delete(sessionId);
      throw new AppError('session_full', `session ${sessionId} is full (${this.#limits.maxParticipants} participants)`);
    }
    clearTimeout(session.expiry);
    session.expiry = undefined;
    const participant: Participant = {
      id: randomUUID(),
      name,
      sessionId,
      role: options.role,
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
    if (![...session.participants.values()].some((p) => p.present)) this.#expireLater(session);
    else this.#forgetOldLeavers(session);
    activeSessions.set(this.#sessions.size);
  }

  /** Forgets every session now (server shutdown). */
  clear(): void {
    for (const session of this.#sessions.values()) clearTimeout(session.expiry);
    this.#sessions.clear();
    activeSessions.set(0);
  }

  #expireLater(session: Session): void {
    clearTimeout(session.expiry);
    const forget = (): void => {
      if (this.#sessions.get(session.id) !== session) return;
      this.#sessions.delete(session.id);
      activeSessions.set(this.#sessions.size);
    };
    if (this.#limits.graceMs === 0) return forget();
    session.expiry = setTimeout(forget, this.#limits.graceMs);
    session.expiry.unref();
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
