/**
 * SessionStore shared by every node on one Redis (REDIS_URL). Membership, names, roles, presence
 * and per-track timelines live in Redis with the bounds of the in-memory store; each change is
 * one Lua script (redis-scripts.ts), so limits hold across the cluster. A participant's tracker
 * and keyframe state stay on this node (LiveParticipant).
 *
 * Dead nodes: each participant record names its node; every CLUSTER_HEARTBEAT_MS a node renews
 * its liveness key (which expires after 3 x CLUSTER_HEARTBEAT_MS) and sweeps: participants of
 * nodes whose key expired are marked left, and `onPresence` listeners tell their sessions
 * (participant:left). A node killed without closing is noticed 3-4 heartbeats later (6-8 s by
 * default); a join into a session reaps that session's dead participants at once.
 *
 * Redis away: commands fail at once with `not_ready` (join, timeline:get) or are skipped
 * (timeline samples of that time are lost; leaves are applied later). When Redis answers again
 * the node reconciles: Redis's view of this node's participants is made to match the node's
 * (left ones marked left, present ones put back, their session re-created if Redis lost it).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import type { Face, ParticipantInfo, ParticipantTimeline, TimelineSample, TrackTimeline } from '../../contract/socket.ts';
import type { RedisConnection } from '../cluster/redis.ts';
import { activeSessions } from '../metrics/metrics.ts';
import { SCRIPTS, type ScriptName } from './redis-scripts.ts';
import { type JoinOptions, type LiveParticipant, localParticipant, type PresenceChange, type SessionLimits, type SessionStore } from './session-store.ts';

export interface RedisSessionsOptions {
  limits: SessionLimits;
  connection: RedisConnection;
  /** CLUSTER_HEARTBEAT_MS */
  heartbeatMs: number;
  logger: Logger;
  /** key prefix (tests use their own) */
  prefix?: string;
}

interface Owned {
  participant: LiveParticipant;
  address: string;
}

interface ParticipantRecord {
  name?: string;
  role: 'participant' | 'observer';
  node: string;
  present: 0 | 1;
  j: number;
}

type ReadEntry = [pid: string, record: string, alive: number, ...tracks: (string | string[])[]];

/** cjson writes an empty list as {}. */
function changesOf(json: unknown, change: PresenceChange['change']): PresenceChange[] {
  const list = typeof json === 'string' ? (JSON.parse(json) as unknown) : json;
  if (!Array.isArray(list)) return [];
  return (list as { sessionId: string; participantId: string; name?: string }[]).map((c) => ({
    change,
    sessionId: c.sessionId,
    participantId: c.participantId,
    ...(typeof c.name === 'string' ? { name: c.name } : {}),
  }));
}

/** The longest a live frame's answer waits for its timeline sample to be written. */
const RECORD_WAIT_MS = 250;

const UNREACHABLE = 'the cluster store (Redis) cannot be reached; try again shortly';

export class RedisSessionStore implements SessionStore {
  readonly #limits: SessionLimits;
  readonly #connection: RedisConnection;
  readonly #logger: Logger;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #owned = new Map<string, Owned>();
  readonly #listeners: ((changes: PresenceChange[]) => void)[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  readonly #timer: NodeJS.Timeout;
  #size = 0;
  /** Redis may disagree with this node about its participants: reconcile at the next tick. */
  #dirty = true;
  #ticking = false;
  #closed = false;

  constructor(options: RedisSessionsOptions) {
    this.#limits = options.limits;
    this.#connection = options.connection;
    this.#logger = options.logger;
    this.#prefix = options.prefix ?? 'moodwire:';
    this.#ttlMs = 3 * options.heartbeatMs;
    for (const [name, lua] of Object.entries(SCRIPTS)) this.#connection.client.defineCommand(name, { numberOfKeys: 0, lua });
    this.#connection.on('up', () => {
      this.#dirty = true;
      void this.tick();
    });
    this.#timer = setInterval(() => void this.tick(), options.heartbeatMs);
    this.#timer.unref();
    if (this.#connection.up) void this.tick();
  }

  get size(): number {
    return this.#size;
  }

  get nodeId(): string {
    return this.#connection.nodeId;
  }

  async #call(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    if (!this.#connection.up) throw new AppError('not_ready', UNREACHABLE);
    const client = this.#connection.client as unknown as Record<ScriptName, (...a: (string | number)[]) => Promise<unknown>>;
    try {
      return await client[name](this.#prefix, ...args);
    } catch (error) {
      throw new AppError('not_ready', `${UNREACHABLE} (${(error as Error).message})`);
    }
  }

  /** Runs a write, remembered until it settles so close() can wait for it. */
  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  #tell(changes: PresenceChange[]): void {
    if (changes.length === 0) return;
    for (const listener of this.#listeners) listener(changes);
  }

  async join(sessionId: string, name: string | undefined, options: JoinOptions): Promise<LiveParticipant> {
    const { maxSessions, maxParticipants, graceMs } = this.#limits;
    const id = randomUUID();
    let answer: [string, string];
    try {
      answer = (await this.#track(
        this.#call('mwJoin', sessionId, id, name ?? '', options.role, options.address, this.nodeId, this.#ttlMs, maxSessions, maxParticipants, options.maxSessionsPerAddress, graceMs),
      )) as [string, string];
    } catch (error) {
      // It may have been applied before the answer was lost.
      this.#dirty = true;
      throw error;
    }
    const [outcome, detail] = answer;
    if (outcome === 'too_many_sessions') throw new AppError('too_many_sessions', `the cluster holds its maximum of ${maxSessions} sessions`);
    if (outcome === 'rate_limited') {
      throw new AppError('rate_limited', `this address already created ${detail} sessions that still exist (at most ${options.maxSessionsPerAddress})`);
    }
    this.#tell(changesOf(detail, 'left'));
    if (outcome === 'session_full') throw new AppError('session_full', `session ${sessionId} is full (${maxParticipants} participants)`);
    const participant = localParticipant(this.#limits, { id, name, sessionId, role: options.role });
    this.#owned.set(id, { participant, address: options.address });
    return participant;
  }

  async leave(participant: LiveParticipant): Promise<void> {
    participant.present = false;
    this.#owned.delete(participant.id);
    try {
      await this.#track(this.#call('mwLeave', participant.sessionId, participant.id, this.#limits.maxParticipants, this.#limits.graceMs));
    } catch (error) {
      this.#dirty = true;
      this.#logger.debug({ err: error, participantId: participant.id }, 'leave not written to Redis; reconciled when it answers');
    }
  }

  async #read(sessionId: string, participantId: string | undefined, withTracks: boolean): Promise<{ pid: string; record: ParticipantRecord; alive: boolean; tracks: TrackTimeline[] }[]> {
    const entries = (await this.#call('mwRead', sessionId, participantId ?? '', withTracks ? 1 : 0)) as ReadEntry[];
    return entries
      .map(([pid, record, alive, ...rest]) => {
        const tracks: TrackTimeline[] = [];
        for (let i = 0; i + 1 < rest.length; i += 2) {
          tracks.push({ trackId: Number(rest[i]), samples: (rest[i + 1] as string[]).map((s) => JSON.parse(s) as TimelineSample) });
        }
        return { pid, record: JSON.parse(record) as ParticipantRecord, alive: alive === 1, tracks };
      })
      .sort((a, b) => a.record.j - b.record.j);
  }

  async others(participant: LiveParticipant): Promise<ParticipantInfo[]> {
    const entries = await this.#read(participant.sessionId, undefined, false);
    return entries
      .filter((e) => e.record.present === 1 && e.alive && e.pid !== participant.id)
      .map((e) => ({ participantId: e.pid, ...(e.record.name ? { name: e.record.name } : {}) }));
  }

  async timelines(sessionId: string, participantId?: string, sinceTs?: number): Promise<ParticipantTimeline[]> {
    const entries = await this.#read(sessionId, participantId, true);
    return entries.map((e) => ({
      participantId: e.pid,
      ...(e.record.name ? { name: e.record.name } : {}),
      present: e.record.present === 1 && e.alive,
      tracks: e.tracks
        .map((t) => ({ trackId: t.trackId, samples: sinceTs === undefined ? t.samples : t.samples.filter((s) => s.ts > sinceTs) }))
        .sort((a, b) => a.trackId - b.trackId),
    }));
  }

  async hasParticipant(sessionId: string, participantId: string): Promise<boolean> {
    return (await this.#read(sessionId, participantId, false)).length > 0;
  }

  async record(participant: LiveParticipant, faces: Face[], seq: number, ts: number): Promise<void> {
    if (faces.length === 0) return;
    const args = faces.flatMap((face) => [face.trackId, JSON.stringify({ ts, seq, dominant: face.dominant, smoothed: face.smoothed } satisfies TimelineSample)]);
    const write = this.#track(this.#call('mwRecord', participant.sessionId, participant.id, this.#limits.timelineMaxSamples, this.#limits.timelineMaxTracks, ...args));
    // A slow Redis (connected but not answering) must not hold up the frame's answer for the
    // whole command timeout: wait at most RECORD_WAIT_MS; the write goes on (or fails) behind.
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, RECORD_WAIT_MS);
    });
    write.catch(() => undefined);
    try {
      await Promise.race([write, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  onPresence(listener: (changes: PresenceChange[]) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * One heartbeat: reconcile if needed, renew the liveness key, forget expired sessions, mark
   * dead nodes' participants left (told to onPresence listeners). Runs every CLUSTER_HEARTBEAT_MS
   * and when Redis comes back; exported for tests.
   */
  async tick(): Promise<void> {
    if (this.#ticking || this.#closed || !this.#connection.up) return;
    this.#ticking = true;
    const { maxParticipants, graceMs } = this.#limits;
    try {
      if (this.#dirty) {
        this.#dirty = false;
        const mine = [...this.#owned.values()].map(({ participant: p, address }) => ({
          sessionId: p.sessionId,
          participantId: p.id,
          role: p.role,
          address,
          ...(p.name === undefined ? {} : { name: p.name }),
        }));
        try {
          const result = JSON.parse((await this.#call('mwReconcile', this.nodeId, this.#ttlMs, maxParticipants, graceMs, JSON.stringify(mine))) as string) as { joined: unknown };
          // Left ones were told by their own leave; only those another node had marked left come back.
          this.#tell(changesOf(result.joined, 'joined'));
        } catch (error) {
          this.#dirty = true;
          throw error;
        }
      }
      const [gone, sessions] = (await this.#call('mwSweep', this.nodeId, this.#ttlMs, maxParticipants, graceMs)) as [string, number];
      this.#size = Number(sessions);
      activeSessions.set(this.#size);
      this.#tell(changesOf(gone, 'left'));
    } catch (error) {
      this.#logger.debug({ err: error }, 'cluster heartbeat failed; retried at the next one');
    } finally {
      this.#ticking = false;
    }
  }

  /** Shutdown: waits for writes in flight, marks this node's remaining participants left, drops the liveness key. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#pending]);
    this.#owned.clear();
    if (!this.#connection.up) return;
    try {
      await this.#call('mwReconcile', this.nodeId, this.#ttlMs, this.#limits.maxParticipants, this.#limits.graceMs, '[]');
      await this.#connection.client.del(`${this.#prefix}node:${this.nodeId}`);
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not mark this node\'s participants left in Redis; the other nodes will when its liveness key expires');
    }
  }
}
