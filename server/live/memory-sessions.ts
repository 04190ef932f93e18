/** SessionStore of a single node: the in-memory SessionRegistry (sessions.ts) behind the async interface. */
import type { Face, ParticipantInfo, ParticipantTimeline } from '../../contract/socket.ts';
import type { JoinOptions, PresenceChange, SessionLimits, SessionStore } from './session-store.ts';
import { type Participant, SessionRegistry } from './sessions.ts';

export class MemorySessionStore implements SessionStore {
  readonly registry: SessionRegistry;

  constructor(limits: SessionLimits) {
    this.registry = new SessionRegistry(limits);
  }

  get size(): number {
    return this.registry.size;
  }

  async join(sessionId: string, name: string | undefined, options: JoinOptions): Promise<Participant> {
    return this.registry.join(sessionId, name, options);
  }

  // The participants this store hands out are the registry's (with their timelines).
  async leave(participant: Participant): Promise<void> {
    this.registry.leave(participant);
  }

  async others(participant: Participant): Promise<ParticipantInfo[]> {
    return this.registry.others(participant);
  }

  async timelines(sessionId: string, participantId?: string, sinceTs?: number): Promise<ParticipantTimeline[]> {
    return this.registry.timelines(sessionId, participantId, sinceTs);
  }

  async hasParticipant(sessionId: string, participantId: string): Promise<boolean> {
    return this.registry.hasParticipant(sessionId, participantId);
  }

  async record(participant: Participant, faces: Face[], seq: number, ts: number): Promise<void> {
    participant.timelines.add(faces, seq, ts);
  }

  /** One node: every change is the participant's own event. */
  onPresence(_listener: (changes: PresenceChange[]) => void): void {}

  async close(): Promise<void> {
    this.registry.clear();
  }
}
