/**
 * Two real server nodes (two startServer instances) sharing one real redis-server (REDIS_URL):
 * a session spans both nodes (join lists, participant:joined/left, emotions relayed from one node
 * to the other, timeline:get of the other node's participant, MAX_PARTICIPANTS_PER_SESSION held
 * across them), and Redis SIGKILLed and restarted (empty) while a participant on each node
 * streams: no crash, every frame is still answered, /readyz says degraded (200) and
 * moodwire_redis_up 0 meanwhile, and cross-node broadcasts, joins and timelines work again after.
 * Real frames: a photo of ../shared/media.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmotionsEvent, FrameResult, JoinResult, ParticipantInfo, ServerToClientEvents, TimelineResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, readPhoto, request, startTestServer } from './live-support.ts';
import { TestRedis } from './redis-support.ts';

const PHOTO = 'group1.jpg';

/** The next `event` on `socket` that `accept` takes, or a rejection after `ms`. */
function next<E extends 'emotions' | 'participant:joined' | 'participant:left'>(
  socket: TestClient,
  event: E,
  accept: (payload: Parameters<ServerToClientEvents[E]>[0]) => boolean = () => true,
  ms = 15_000,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener as never);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const listener = (payload: Parameters<ServerToClientEvents[E]>[0]): void => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener as never);
      resolve(payload);
    };
    socket.on(event, listener as never);
  });
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const readyz = async (server: RunningServer): Promise<{ code: number; body: { status: string; cluster?: string; nodeId?: string } }> => {
  const res = await fetch(`${server.url}/readyz`);
  return { code: res.status, body: (await res.json()) as { status: string; cluster?: string } };
};

async function metric(server: RunningServer, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('two nodes on one Redis', { timeout: 300_000 }, () => {
  let redis: TestRedis;
  let nodeA: RunningServer;
  let nodeB: RunningServer;
  const clients: TestClient[] = [];
  const image = readPhoto(PHOTO);

  const open = async (server: RunningServer): Promise<TestClient> => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    return socket;
  };
  const join = async (socket: TestClient, sessionId: string, name: string): Promise<JoinResult> => {
    const ack = await request<JoinResult>(socket, 'session:join', { sessionId, name });
    assert.ok(ack.ok, JSON.stringify(ack));
    return ack;
  };

  before(async () => {
    redis = await TestRedis.start();
    const env = (nodeId: string) => ({ REDIS_URL: redis.url, NODE_ID: nodeId, WORKERS: '1', MAX_PARTICIPANTS_PER_SESSION: '2', CLUSTER_HEARTBEAT_MS: '500' });
    [nodeA, nodeB] = await Promise.all([startTestServer(env('node-a')), startTestServer(env('node-b'))]);
    await Promise.all([nodeA.ready, nodeB.ready]);
    await until('both nodes reach Redis', async () => nodeA.cluster() === 'ok' && nodeB.cluster() === 'ok');
  });

  after(async () => {
    for (const socket of clients) socket.close();
    await Promise.all([nodeA?.close(), nodeB?.close()]);
    await redis?.stop();
  });

  it('shares a session: join lists, participant:joined/left, emotions and timelines across nodes, and the participant limit', async () => {
    const ann = await open(nodeA);
    const ben = await open(nodeB);
    const joinedA = await join(ann, 'cross', 'Ann');
    const annSeesBen = next(ann, 'participant:joined');
    const joinedB = await join(ben, 'cross', 'Ben');
    assert.deepEqual(joinedB.participants, [{ participantId: joinedA.participantId, name: 'Ann' }] satisfies ParticipantInfo[], 'B lists the participant on A');
    assert.deepEqual(await annSeesBen, { participantId: joinedB.participantId, name: 'Ben' }, 'participant:joined crosses from B to A');

    const relayed = next(ben, 'emotions', (e) => e.participantId === joinedA.participantId);
    const frame = await request<FrameResult>(ann, 'frame', { seq: 1, ts: 1_000, image });
    assert.ok(frame.ok, JSON.stringify(frame));
    assert.ok(frame.faces.length > 0, 'the photo has faces');
    const emotions: EmotionsEvent = await relayed;
    assert.equal(emotions.seq, 1);
    assert.deepEqual(emotions.faces.map((f) => f.trackId), frame.faces.map((f) => f.trackId), 'B receives the faces A answered');

    const timeline = await request<TimelineResult>(ben, 'timeline:get', { participantId: joinedA.participantId });
    assert.ok(timeline.ok, JSON.stringify(timeline));
    const [annTimeline] = timeline.participants;
    assert.equal(annTimeline?.name, 'Ann');
    assert.equal(annTimeline?.present, true);
    assert.deepEqual(annTimeline?.tracks.map((t) => t.trackId), frame.faces.map((f) => f.trackId).sort((x, y) => x - y));
    assert.ok(annTimeline?.tracks.every((t) => t.samples.length === 1 && t.samples[0]!.seq === 1 && t.samples[0]!.ts === 1_000));

    // MAX_PARTICIPANTS_PER_SESSION=2 holds across nodes: a third is refused on either one.
    for (const server of [nodeB, nodeA]) {
      const third = await open(server);
      const refused = await request<JoinResult>(third, 'session:join', { sessionId: 'cross', name: 'Cy' });
      assert.ok(!refused.ok && refused.error.code === 'session_full', JSON.stringify(refused));
    }

    const benSeesAnnLeave = next(ben, 'participant:left');
    assert.ok((await request(ann, 'session:leave', {})).ok);
    assert.deepEqual(await benSeesAnnLeave, { participantId: joinedA.participantId, name: 'Ann' });
    const kept = await request<TimelineResult>(ben, 'timeline:get', {});
    assert.ok(kept.ok);
    assert.equal(kept.participants.find((p) => p.participantId === joinedA.participantId)?.present, false, 'the leaver\'s timeline stays, not present');
  });

  it('survives Redis killed and restarted while both nodes stream: frames answered throughout, degraded meanwhile, broadcasts resume', async () => {
    const ann = await open(nodeA);
    const ben = await open(nodeB);
    const joinedA = await join(ann, 'storm', 'Ann');
    const joinedB = await join(ben, 'storm', 'Ben');
    const received: { from: string; ts: number }[] = [];
    ann.on('emotions', (e) => received.push({ from: e.participantId, ts: e.ts }));
    ben.on('emotions', (e) => received.push({ from: e.participantId, ts: e.ts }));

    const answers: { socket: string; at: number; ok: boolean; code?: string }[] = [];
    let streaming = true;
    const stream = async (socket: TestClient, name: string): Promise<void> => {
      for (let seq = 1; streaming; seq++) {
        const ack = await request<FrameResult>(socket, 'frame', { seq, ts: Date.now(), image });
        answers.push({ socket: name, at: Date.now(), ok: ack.ok, ...(ack.ok ? {} : { code: ack.error.code }) });
        await sleep(50);
      }
    };
    const streams = Promise.all([stream(ann, 'ann'), stream(ben, 'ben')]);

    await until('emotions cross both ways before the outage', async () => received.some((r) => r.from === joinedA.participantId) && received.some((r) => r.from === joinedB.participantId));

    await redis.kill();
    const killedAt = Date.now();
    await until('both nodes see Redis gone', async () => nodeA.cluster() === 'degraded' && nodeB.cluster() === 'degraded');
    const degraded = await readyz(nodeA);
    assert.equal(degraded.code, 200, 'a node without Redis stays in the load balancer');
    assert.equal(degraded.body.status, 'ready');
    assert.equal(degraded.body.cluster, 'degraded');
    assert.equal(degraded.body.nodeId, 'node-a');
    assert.equal(await metric(nodeA, 'moodwire_redis_up{node_id="node-a"}'), 0);
    // A join needs Redis: refused with a reason, not hung.
    const late = await open(nodeB);
    const refused = await request<JoinResult>(late, 'session:join', { sessionId: 'elsewhere' });
    assert.ok(!refused.ok && refused.error.code === 'not_ready', JSON.stringify(refused));
    await sleep(2_000);

    await redis.restart();
    const restartedAt = Date.now();
    const during = answers.filter((a) => a.at > killedAt && a.at < restartedAt);
    for (const name of ['ann', 'ben']) {
      assert.ok(during.filter((a) => a.socket === name && a.ok).length >= 3, `${name}'s frames were answered during the outage: ${JSON.stringify(during)}`);
    }
    await until('both nodes back', async () => nodeA.cluster() === 'ok' && nodeB.cluster() === 'ok');
    assert.deepEqual((await readyz(nodeB)).body.cluster, 'ok');
    assert.equal(await metric(nodeA, 'moodwire_redis_up{node_id="node-a"}'), 1);
    // Frames sent after the restart cross again, both ways.
    await until('emotions cross both ways after the restart', async () =>
      received.some((r) => r.from === joinedA.participantId && r.ts > restartedAt) && received.some((r) => r.from === joinedB.participantId && r.ts > restartedAt),
    );
    const resumedMs = Date.now() - restartedAt;

    // Redis came back empty: each node put its participants back; timelines grow again.
    await until('timelines recorded again', async () => {
      const timeline = await request<TimelineResult>(ben, 'timeline:get', { participantId: joinedA.participantId });
      return timeline.ok && timeline.participants[0]!.present && timeline.participants[0]!.tracks.some((t) => t.samples.some((s) => s.ts > restartedAt));
    });
    streaming = false;
    await streams;
    assert.deepEqual(answers.filter((a) => !a.ok), [], 'every frame was answered ok');
    for (const server of [nodeA, nodeB]) assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const third = await open(nodeA);
    const full = await request<JoinResult>(third, 'session:join', { sessionId: 'storm' });
    assert.ok(!full.ok && full.error.code === 'session_full', `both participants are back in Redis: ${JSON.stringify(full)}`);
    process.stdout.write(`# outage ${restartedAt - killedAt} ms, ${during.length} frames answered during it; cross-node emotions resumed ${resumedMs} ms after the restart\n`);
  });

  it('a node that shuts down takes its participants out of the session at once', async () => {
    const ann = await open(nodeA);
    const ben = await open(nodeB);
    const joinedA = await join(ann, 'farewell', 'Ann');
    await join(ben, 'farewell', 'Ben');
    const left = next(ben, 'participant:left', (p) => p.participantId === joinedA.participantId, 10_000);
    const closing = Date.now();
    await nodeA.close();
    await left;
    const leftMs = Date.now() - closing;
    const timeline = await request<TimelineResult>(ben, 'timeline:get', {});
    assert.ok(timeline.ok);
    assert.equal(timeline.participants.find((p) => p.participantId === joinedA.participantId)?.present, false);
    process.stdout.write(`# participant:left reached node B ${leftMs} ms after node A began to close\n`);
  });
});
