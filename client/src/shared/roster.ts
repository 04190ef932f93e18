/**
 * The other participants of a session as this page knows them: from the join answer,
 * `participant:joined` / `participant:left` and every `emotions` broadcast (a participant first
 * seen through its emotions is added too). Bounded: at most `maxParticipants`, each with a
 * bounded timeline. Pure, tested in Node.
 */
import type { EmotionsEvent, ParticipantInfo, Face } from '../../../contract/socket.ts';
import { TimelineBuffer } from './timeline-buffer.ts';

/** One other participant: presence, the faces of its latest `emotions` event and their timelines. */
export interface RemoteParticipant {
  participantId: string;
  name: string | undefined;
  present: boolean;
  faces: Face[];
  lastSeq: number;
  lastEventAt: number | undefined;
  timeline: TimelineBuffer;
}

export class Roster {
  readonly #participants = new Map<string, RemoteParticipant>();
  readonly #maxParticipants: number;
  readonly #timelineOptions: { maxSamples: number; maxTracks: number };

  constructor(options: { maxParticipants?: number; maxSamples?: number; maxTracks?: number } = {}) {
    this.#maxParticipants = options.maxParticipants ?? 32;
    this.#timelineOptions = { maxSamples: options.maxSamples ?? 200, maxTracks: options.maxTracks ?? 4 };
  }

  /** Replaces everything with the join answer's list. */
  reset(participants: ParticipantInfo[]): void {
    this.#participants.clear();
    for (const p of participants) this.joined(p);
  }

  joined(info: ParticipantInfo): RemoteParticipant {
    let p = this.#participants.get(info.participantId);
    if (!p) {
      p = {
        participantId: info.participantId,
        name: info.name,
        present: true,
        faces: [],
        lastSeq: -1,
        lastEventAt: undefined,
        timeline: new TimelineBuffer(this.#timelineOptions),
      };
      this.#participants.set(info.participantId, p);
      this.#evict(p);
    }
    p.present = true;
    if (info.name) p.name = info.name;
    return p;
  }

  left(info: ParticipantInfo): void {
    const p = this.#participants.get(info.participantId);
    if (!p) return;
    p.present = false;
    p.faces = [];
  }

  /** Applies an `emotions` broadcast; events older than the last one seen are ignored. */
  emotions(event: EmotionsEvent, now: number): RemoteParticipant | undefined {
    const p = this.joined({ participantId: event.participantId });
    if (event.seq <= p.lastSeq) return undefined;
    p.lastSeq = event.seq;
    p.lastEventAt = now;
    p.faces = event.faces;
    for (const face of event.faces) p.timeline.add(face.trackId, event.ts, face.smoothed, face.dominant);
    return p;
  }

  list(): RemoteParticipant[] {
    return [...this.#participants.values()].sort((a, b) => Number(b.present) - Number(a.present) || a.participantId.localeCompare(b.participantId));
  }

  get(participantId: string): RemoteParticipant | undefined {
    return this.#participants.get(participantId);
  }

  get size(): number {
    return this.#participants.size;
  }

  #evict(keep: RemoteParticipant): void {
    // Drop participants who left first, then the longest silent (never the one just added).
    while (this.#participants.size > this.#maxParticipants) {
      const candidates = [...this.#participants.values()].filter((p) => p !== keep).sort(
        (a, b) => Number(a.present) - Number(b.present) || (a.lastEventAt ?? 0) - (b.lastEventAt ?? 0),
      );
      const victim = candidates[0];
      if (!victim) return;
      this.#participants.delete(victim.participantId);
    }
  }
}
