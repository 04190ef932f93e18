/**
 * A real node process (server/main.ts, as `npm start` runs it) and an in-process node on one real
 * redis-server: emotions cross between the processes, and when the process is killed with
 * SIGKILL (no goodbye) its participant is marked left for the other node's members within
 * 3-4 CLUSTER_HEARTBEAT_MS, and no longer listed to new joiners.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FrameResult, JoinResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { isAlive, type NodeProcess, spawnNode } from './cluster-support.ts';
import { type TestClient, connectClient, readPhoto, request, startTestServer } from './live-support.ts';
import { TestRedis } from './redis-support.ts';

const HEARTBEAT_MS = 500;


describe('a node process killed with SIGKILL', { timeout: 240_000 }, () => {
  let redis: TestRedis;
  let nodeA: NodeProcess;
  let nodeB: RunningServer;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await TestRedis.start();
    nodeA = await spawnNode('proc-a', { REDIS_URL: redis.url, CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    nodeB = await startTestServer({ REDIS_URL: redis.url, NODE_ID: 'proc-b', WORKERS: '1', CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await nodeB.ready;
    const deadline = Date.now() + 180_000;
    for (;;) {
      const body = await fetch(`${nodeA.url}/readyz`).then((r) => (r.ok ? (r.json() as Promise<{ cluster?: string }>) : undefined), () => undefined);
      if (body?.cluster === 'ok') break;
      if (!isAlive(nodeA) || Date.now() > deadline) throw new Error(`node A did not get ready:\n${nodeA.output}`);
      await sleep(300);
    }
  });

  after(async () => {
    for (const socket of clients) socket.close();
    if (nodeA && isAlive(nodeA)) nodeA.child.kill('SIGKILL');
    await nodeB?.close();
    await redis?.stop();
    if (nodeA) rmSync(nodeA.dataDir, { recursive: true, force: true });
  });

  it('relays its emotions while it lives, and its participant leaves for the others within 3-4 heartbeats of its death', async () => {
    assert.match(nodeA.output, /connected to Redis/);
    const ann = await connectClient(nodeA.url);
    const ben = await connectClient(nodeB.url);
    clients.push(ann, ben);
    const joinedA = await request<JoinResult>(ann, 'session:join', { sessionId: 'mortal', name: 'Ann' });
    assert.ok(joinedA.ok, JSON.stringify(joinedA));
    const joinedB = await request<JoinResult>(ben, 'session:join', { sessionId: 'mortal', name: 'Ben' });
    assert.ok(joinedB.ok && joinedB.participants.some((p) => p.participantId === joinedA.participantId), JSON.stringify(joinedB));

    const relayed = new Promise<number>((resolve) => ben.once('emotions', (e) => resolve(e.seq)));
    const frame = await request<FrameResult>(ann, 'frame', { seq: 7, image: readPhoto('group1.jpg') });
    assert.ok(frame.ok, JSON.stringify(frame));
    assert.equal(await relayed, 7, 'emotions cross from the process to the other node');

    const left = new Promise<{ participantId: string }>((resolve) => ben.on('participant:left', resolve));
    nodeA.child.kill('SIGKILL');
    const killedAt = Date.now();
    const gone = await Promise.race([left, sleep(15_000).then(() => undefined)]);
    const noticedMs = Date.now() - killedAt;
    assert.equal(gone?.participantId, joinedA.participantId, 'participant:left for the dead node\'s participant');
    assert.ok(noticedMs <= 4 * HEARTBEAT_MS + 1000, `noticed after ${noticedMs} ms (heartbeat ${HEARTBEAT_MS} ms)`);

    const newcomer = await connectClient(nodeB.url);
    clients.push(newcomer);
    const joinedC = await request<JoinResult>(newcomer, 'session:join', { sessionId: 'mortal', name: 'Cy' });
    assert.ok(joinedC.ok);
    assert.deepEqual(joinedC.participants, [{ participantId: joinedB.participantId, name: 'Ben' }], 'the dead node\'s participant is not listed');
    process.stdout.write(`# SIGKILLed node's participant left for the others ${noticedMs} ms after the kill (CLUSTER_HEARTBEAT_MS=${HEARTBEAT_MS})\n`);
  });
});
