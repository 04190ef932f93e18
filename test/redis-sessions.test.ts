/**
 * RedisSessionStore against a real redis-server, without models: two "nodes" (two stores with
 * their own connections and node ids) share the limits, see each other's participants and
 * timelines, a dead node's participants are marked left, and a node puts its participants back
 * after Redis lost everything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { AppError } from '../contract/errors.ts';
import type { Face } from '../contract/socket.ts';
import { RedisConnection } from '../server/cluster/redis.ts';
import { RedisSessionStore } from '../server/live/redis-sessions.ts';
import type { PresenceChange } from '../server/live/session-store.ts';
import { TestRedis } from './redis-support.ts';

const limits = { maxSessions: 3, maxParticipants: 2, timelineMaxSamples: 3, timelineMaxTracks: 2, trackMaxAgeMs: 1500, smoothingTauMs: 400, keyframe: { intervalFrames: 5, intervalMs: 1000 }, graceMs: 0 };
const local = { role: 'participant', address: '127.0.0.1', maxSessionsPerAddress: 100 } as const;
const logger = pino({ level: 'silent' });
const HEARTBEAT_MS = 200;

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof AppError ? error.code : `not an AppError: ${String(error)}`;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const face = (trackId: number): Face => ({
  trackId,
  box: { x: 0, y: 0, width: 10, height: 10 },
  score: 0.9,
  emotions: { angry: 0, disgust: 0, fear: 0, happy: 1, sad: 0, surprise: 0, neutral: 0 },
  dominant: 'happy',
  smoothed: { angry: 0, disgust: 0, fear: 0, happy: 1, sad: 0, surprise: 0, neutral: 0 },
  origin: 'detection',
  uncertain: false,
});

interface Node {
  connection: RedisConnection;
  store: RedisSessionStore;
  changes: PresenceChange[];
}

describe('RedisSessionStore (real redis-server)', () => {
  let redis: TestRedis;
  const nodes: Node[] = [];
  let prefixCount = 0;
  const node = async (id: string, prefix: string): Promise<Node> => {
    const connection = new RedisConnection(redis.url, id, logger);
    const store = new RedisSessionStore({ limits, connection, heartbeatMs: HEARTBEAT_MS, logger, prefix });
    const changes: PresenceChange[] = [];
    store.onPresence((c) => changes.push(...c));
    await until(`${id} connected`, () => connection.up);
    const made = { connection, store, changes };
    nodes.push(made);
    return made;
  };
  const pair = async (): Promise<[Node, Node]> => {
    prefixCount += 1;
    const prefix = `t${prefixCount}:`;
    return [await node(`a${prefixCount}`, prefix), await node(`b${prefixCount}`, prefix)];
  };

  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    for (const n of nodes) {
      await n.store.close();
      await n.connection.close();
    }
    await redis.stop();
  });

  it('holds MAX_PARTICIPANTS_PER_SESSION and MAX_SESSIONS across nodes, and shows each node the other\'s participants and timelines', async () => {
    const [a, b] = await pair();
    const alice = await a.store.join('room', 'Alice', local);
    const bob = await b.store.join('room', 'Bob', local);
    assert.deepEqual(await b.store.others(bob), [{ participantId: alice.id, name: 'Alice' }]);
    assert.equal(await codeOf(a.store.join('room', 'Carol', local)), 'session_full');
    assert.equal(await codeOf(b.store.join('room', 'Carol', local)), 'session_full');
    // Timelines: bounded per track and per participant, readable from the other node.
    for (let seq = 1; seq <= 5; seq++) await a.store.record(alice, [face(1)], seq, 1000 + seq);
    await a.store.record(alice, [face(2)], 6, 1006);
    await a.store.record(alice, [face(3)], 7, 1007);
    const [timeline] = await b.store.timelines('room', alice.id);
    assert.ok(timeline);
    assert.equal(timeline.present, true);
    assert.deepEqual(timeline.tracks.map((t) => t.trackId), [2, 3], 'two tracks kept, the stalest dropped');
    const since = await b.store.timelines('room', alice.id, 1006);
    assert.deepEqual(since[0]!.tracks.map((t) => t.samples.length), [0, 1]);
    await a.store.leave(alice);
    assert.equal(await codeOf(b.store.join('room', 'Carol', local)), undefined, 'a seat is free again');
    await a.store.record(alice, [face(9)], 8, 1008);
    const afterLeave = await b.store.timelines('room', alice.id);
    assert.equal(afterLeave[0]!.present, false);
    assert.deepEqual(afterLeave[0]!.tracks.map((t) => t.trackId), [2, 3], 'nothing recorded after the leave');
    // MAX_SESSIONS = 3: room, two, three; a fourth is refused on either node.
    await a.store.join('two', undefined, local);
    await b.store.join('three', undefined, local);
    assert.equal(await codeOf(a.store.join('four', undefined, local)), 'too_many_sessions');
    assert.equal(await codeOf(b.store.join('four', undefined, { ...local, address: '10.0.0.9' })), 'too_many_sessions');
  });

  it('holds MAX_SESSIONS_PER_ADDRESS across nodes and forgets an empty session (grace 0)', async () => {
    const [a, b] = await pair();
    const capped = { ...local, address: '198.51.100.7', maxSessionsPerAddress: 1 };
    const first = await a.store.join('mine', undefined, capped);
    assert.equal(await codeOf(b.store.join('another', undefined, capped)), 'rate_limited');
    await a.store.leave(first);
    assert.deepEqual(await b.store.timelines('mine'), [], 'the empty session is gone');
    assert.equal(await codeOf(b.store.join('another', undefined, capped)), undefined);
  });

  it('marks a dead node\'s participants left within about 4 heartbeats and tells the others', async () => {
    const [a, b] = await pair();
    const alice = await a.store.join('wake', 'Alice', local);
    const bob = await b.store.join('wake', 'Bob', local);
    // Node b dies without a word: its connection drops (it renews nothing), its key expires after 3 heartbeats.
    b.connection.client.disconnect();
    const killedAt = Date.now();
    await until('participant:left for Bob', () => a.changes.some((c) => c.change === 'left' && c.participantId === bob.id));
    const noticedMs = Date.now() - killedAt;
    assert.ok(noticedMs <= 5 * HEARTBEAT_MS + 500, `noticed after ${noticedMs} ms`);
    process.stdout.write(`# a dead node's participant marked left ${noticedMs} ms after it went silent (heartbeat ${HEARTBEAT_MS} ms)\n`);
    assert.deepEqual(await a.store.others(alice), []);
    const [timeline] = await a.store.timelines('wake', bob.id);
    assert.equal(timeline?.present, false);
  });

  it('starts while Redis is down: joins refused not_ready, served once Redis answers', async () => {
    const later = await TestRedis.reserve();
    const lines: { msg: string }[] = [];
    const recorded = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const connection = new RedisConnection(later.url, 'early', recorded);
    const store = new RedisSessionStore({ limits, connection, heartbeatMs: HEARTBEAT_MS, logger, prefix: 'early:' });
    try {
      await sleep(300);
      assert.equal(connection.up, false);
      assert.equal(await codeOf(store.join('dawn', undefined, local)), 'not_ready');
      assert.ok(lines.some((l) => l.msg.startsWith('cannot reach Redis at start')), JSON.stringify(lines));
      await later.restart();
      await until('connected once Redis is there', () => connection.up, 15_000);
      assert.ok(lines.some((l) => l.msg === 'connected to Redis'), JSON.stringify(lines));
      assert.equal(await codeOf(store.join('dawn', undefined, local)), undefined);
    } finally {
      await store.close();
      await connection.close();
      await later.stop();
    }
  });

  it('counts a Redis that hangs as down (not_ready, timeline writes do not hold up), and up again when it answers', async () => {
    const [a] = await pair();
    const alice = await a.store.join('frozen', 'Alice', local);
    redis.pause(true);
    try {
      const started = Date.now();
      await a.store.record(alice, [face(1)], 1, 1).catch(() => undefined);
      assert.ok(Date.now() - started < 1000, `a timeline write waited ${Date.now() - started} ms`);
      await until('a sees Redis down', () => !a.connection.up, 8_000);
      assert.equal(await codeOf(a.store.join('frozen', 'Bob', local)), 'not_ready');
    } finally {
      redis.pause(false);
    }
    await until('a sees Redis up again', () => a.connection.up, 8_000);
    assert.equal(await codeOf(a.store.join('frozen', 'Bob', local)), undefined);
  });

  it('puts its participants back when Redis lost everything, and refuses joins while it is away', async () => {
    const [a, b] = await pair();
    const alice = await a.store.join('phoenix', 'Alice', local);
    const bob = await b.store.join('phoenix', 'Bob', local);
    await redis.kill();
    await until('a sees Redis down', () => !a.connection.up);
    assert.equal(await codeOf(a.store.join('other', undefined, local)), 'not_ready');
    await a.store.record(alice, [face(1)], 1, 1).catch(() => undefined);
    await b.store.leave(bob);
    await redis.restart();
    await until('both reconnected', () => a.connection.up && b.connection.up);
    await until('Alice back in Redis', async () => (await b.store.timelines('phoenix').catch(() => [])).some((p) => p.participantId === alice.id && p.present));
    const timelines = await a.store.timelines('phoenix');
    assert.deepEqual(timelines.map((p) => p.participantId), [alice.id], 'Bob, who left during the outage, is not put back');
    await a.store.record(alice, [face(1)], 2, 2);
    assert.equal((await b.store.timelines('phoenix', alice.id))[0]!.tracks[0]!.samples.length, 1, 'samples are recorded again');
  });
});
