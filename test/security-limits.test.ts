/**
 * Limits one client cannot get around, against a real server: connections and sessions per client
 * address, events per second per socket, and the grace an empty session keeps its timelines for.
 * Each limit refuses the greedy client with its code while a well-behaved one (another address,
 * another socket) is still served. Addresses come from X-Forwarded-For under TRUST_PROXY, as
 * behind a proxy. Also: MOODWIRE_AUTH=off, and /metrics on METRICS_PORT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectErrorData, TimelineResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { type ConnectOptions, connectClient, readPhoto, request, startTestServer, type TestClient } from './live-support.ts';
import { freePort } from './ports.ts';


const from = (address: string): ConnectOptions => ({ headers: { 'X-Forwarded-For': address } });
const codeOf = (ack: { ok: boolean; error?: { code: string } }): string => (ack.ok ? 'ok' : ack.error!.code);

describe('per-client limits', { timeout: 300_000 }, () => {
  let server: RunningServer;
  const sockets: TestClient[] = [];
  const open = async (options: ConnectOptions): Promise<TestClient> => {
    const socket = await connectClient(server.url, options);
    sockets.push(socket);
    return socket;
  };

  before(async () => {
    server = await startTestServer({
      MOODWIRE_AUTH: 'off',
      TRUST_PROXY: 'true',
      MAX_CONNECTIONS_PER_ADDRESS: '3',
      MAX_SESSIONS_PER_ADDRESS: '2',
      SOCKET_EVENTS_PER_SECOND: '5',
      SESSION_GRACE_MS: '1500',
    });
    await server.ready;
  });

  after(async () => {
    for (const socket of sockets) socket.disconnect();
    await server.close();
  });

  it('caps open connections per client address; a closed one frees its place; other addresses still connect', async () => {
    const greedy = [await open(from('198.51.100.1')), await open(from('198.51.100.1')), await open(from('198.51.100.1'))];
    const refused = await connectClient(server.url, from('198.51.100.1')).then(
      (s) => {
        s.disconnect();
        return 'connected';
      },
      (error: { data?: ConnectErrorData }) => error.data?.code,
    );
    assert.equal(refused, 'rate_limited');
    await open(from('198.51.100.2'));
    greedy[0]!.disconnect();
    await sleep(200);
    await open(from('198.51.100.1'));
  });

  it('caps the sessions one address created that still exist', async () => {
    const a = await open(from('198.51.100.10'));
    const b = await open(from('198.51.100.10'));
    const c = await open(from('198.51.100.10'));
    assert.equal(codeOf(await request(a, 'session:join', { sessionId: 'mine-1' })), 'ok');
    assert.equal(codeOf(await request(b, 'session:join', { sessionId: 'mine-2' })), 'ok');
    assert.equal(codeOf(await request(c, 'session:join', { sessionId: 'mine-3' })), 'rate_limited');
    // Joining an existing session creates nothing; another address creates its own.
    assert.equal(codeOf(await request(c, 'session:join', { sessionId: 'mine-1' })), 'ok');
    const other = await open(from('198.51.100.11'));
    assert.equal(codeOf(await request(other, 'session:join', { sessionId: 'theirs' })), 'ok');
  });

  it('refuses events beyond SOCKET_EVENTS_PER_SECOND with rate_limited, on that socket only', async () => {
    const noisy = await open(from('198.51.100.20'));
    const calm = await open(from('198.51.100.21'));
    await request(noisy, 'session:join', { sessionId: 'noisy' });
    await request(calm, 'session:join', { sessionId: 'calm' });
    const burst = await Promise.all(Array.from({ length: 20 }, () => request(noisy, 'timeline:get', {})));
    const codes = burst.map(codeOf);
    assert.ok(codes.filter((c) => c === 'ok').length <= 5, codes.join(','));
    assert.ok(codes.filter((c) => c === 'rate_limited').length >= 15, codes.join(','));
    assert.equal(codeOf(await request(calm, 'timeline:get', {})), 'ok');
    const frame = await request(calm, 'frame', { seq: 1, image: readPhoto('group1.jpg') });
    assert.equal(codeOf(frame), 'ok');
    // The bucket refills: a second later the noisy socket is served again.
    await sleep(1100);
    assert.equal(codeOf(await request(noisy, 'timeline:get', {})), 'ok');
  });

  it('keeps an empty session and its timelines for SESSION_GRACE_MS, then forgets them', async () => {
    const first = await open(from('198.51.100.30'));
    await request(first, 'session:join', { sessionId: 'brief', name: 'First' });
    assert.equal(codeOf(await request(first, 'frame', { seq: 1, image: readPhoto('group1.jpg') })), 'ok');
    await request(first, 'session:leave', {});
    // Within the grace: a new participant still reads the leaver's timeline.
    const again = await open(from('198.51.100.31'));
    await request(again, 'session:join', { sessionId: 'brief' });
    const kept = await request<TimelineResult>(again, 'timeline:get', {});
    assert.ok(kept.ok && kept.participants.some((p) => p.name === 'First' && !p.present && p.tracks.length > 0));
    await request(again, 'session:leave', {});
    const sessionsBefore = server.sessions.size;
    await sleep(2000);
    assert.equal(server.sessions.size, sessionsBefore - 1, 'the empty session is gone after the grace');
    const late = await open(from('198.51.100.32'));
    await request(late, 'session:join', { sessionId: 'brief' });
    const gone = await request<TimelineResult>(late, 'timeline:get', {});
    assert.ok(gone.ok && gone.participants.every((p) => p.name !== 'First'));
  });

  it('MOODWIRE_AUTH=off asks no credential of anyone', async () => {
    const res = await fetch(`${server.url}/api/v1/sessions/open/invites`, { method: 'POST', headers: { 'X-Forwarded-For': '203.0.113.50', 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 201);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { 'X-Forwarded-For': '203.0.113.50' } })).status, 200);
  });
});

describe('METRICS_PORT', { timeout: 300_000 }, () => {
  it('serves /metrics on its own port without a key, and not on the main one', async () => {
    const probe = await startTestServer({ MOODWIRE_API_KEYS: 'metrics-test-key-000000', METRICS_PORT: String(await freePort()) });
    try {
      assert.ok(probe.metricsUrl);
      const res = await fetch(`${probe.metricsUrl}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /moodwire_frames_received_total/);
      assert.equal((await fetch(`${probe.url}/metrics`, { headers: { Authorization: 'Bearer metrics-test-key-000000' } })).status, 404);
    } finally {
      await probe.close();
    }
  });
});
