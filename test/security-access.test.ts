/**
 * Access control against real servers: API keys on every /api/v1 route and /metrics, session
 * invites (signed, expiring, one session, one role) on the socket handshake, the Origin rule on
 * HTTP and on both socket.io transports, security headers, and protected mode (no keys: this
 * machine only). Client addresses other than loopback come from X-Forwarded-For under TRUST_PROXY.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inviteSchema } from '../contract/http.ts';
import type { ConnectErrorData, EmotionsEvent, FrameResult, JoinResult, TimelineResult } from '../contract/socket.ts';
import { InviteSigner } from '../server/security/invites.ts';
import type { RunningServer } from '../server/server.ts';
import { type ConnectOptions, connectClient, readPhoto, request, startTestServer, type TestClient } from './live-support.ts';
import { makeGrayVideo } from './video-support.ts';

const KEY = 'test-key-aaaaaaaaaaaaaaaa';
const OTHER_KEY = 'test-key-bbbbbbbbbbbbbbbb';
const SECRET = 'a test secret of at least thirty-two characters';
const ALLOWED = 'https://app.example.com';
const FOREIGN = 'https://evil.example';

/** The connect_error code of a refused handshake ('connected' if it was not refused). */
async function refusal(url: string, options: ConnectOptions): Promise<string> {
  try {
    const socket = await connectClient(url, options);
    socket.disconnect();
    return 'connected';
  } catch (error) {
    const data = (error as { data?: ConnectErrorData }).data;
    return data?.code ?? `refused without a code (${(error as Error).message})`;
  }
}

const codeOf = (ack: { ok: boolean; error?: { code: string } }): string => (ack.ok ? 'ok' : ack.error!.code);

describe('access control with API keys', { timeout: 300_000 }, () => {
  let server: RunningServer;
  const sockets: TestClient[] = [];
  const open = async (options: ConnectOptions): Promise<TestClient> => {
    const socket = await connectClient(server.url, options);
    sockets.push(socket);
    return socket;
  };
  const invite = async (sessionId: string, body: object, credential = KEY): Promise<Response> =>
    fetch(`${server.url}/api/v1/sessions/${sessionId}/invites`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${credential}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  before(async () => {
    server = await startTestServer({
      MOODWIRE_API_KEYS: `${KEY},${OTHER_KEY}`,
      MOODWIRE_TOKEN_SECRET: SECRET,
      CORS_ORIGINS: ALLOWED,
      TRUST_PROXY: 'true',
      PUBLIC_URL: 'https://moodwire.example.com/',
      MAX_VIDEO_SUBSCRIPTIONS_PER_SOCKET: '1',
    });
    await server.ready;
  });

  after(async () => {
    for (const socket of sockets) socket.disconnect();
    await server.close();
  });

  it('every /api/v1 route and /metrics need a valid API key (401 unauthorized otherwise); health checks and pages do not', async () => {
    const image = new Uint8Array(readPhoto('group1.jpg'));
    const analyze = (headers: Record<string, string>) =>
      fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg', ...headers }, body: image });
    for (const headers of [{}, { Authorization: 'Bearer not-a-key-xxxxxxxxxxxx' }, { Authorization: KEY }] as Record<string, string>[]) {
      const res = await analyze(headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    assert.equal((await analyze({ Authorization: `Bearer ${KEY}` })).status, 200);
    for (const route of ['/api/v1/videos/00000000-0000-4000-8000-000000000000', '/api/v1/nothing-here', '/metrics']) {
      assert.equal((await fetch(`${server.url}${route}`)).status, 401, route);
    }
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${OTHER_KEY}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/`)).status, 200);
  });

  it('creates invites: signed, expiring, bound to a session and a role, with a link that carries the token in its fragment', async () => {
    const res = await invite('standup', { role: 'observer', ttlSec: 600 });
    assert.equal(res.status, 201);
    const body = inviteSchema.parse(await res.json());
    assert.equal(body.sessionId, 'standup');
    assert.equal(body.role, 'observer');
    const ttl = (Date.parse(body.expiresAt) - Date.now()) / 1000;
    assert.ok(ttl > 590 && ttl <= 600, `expires in ${ttl} s`);
    assert.equal(body.url, `https://moodwire.example.com/?session=standup#invite=${body.token}`);
    const claims = await new InviteSigner(new TextEncoder().encode(SECRET)).verify(body.token);
    assert.deepEqual({ sessionId: claims.sessionId, role: claims.role }, { sessionId: 'standup', role: 'observer' });
    // Defaults: a participant, INVITE_DEFAULT_TTL_SEC.
    const plain = inviteSchema.parse(await (await invite('standup', {})).json());
    assert.equal(plain.role, 'participant');
    // Bad requests say what is wrong.
    assert.equal((await invite('standup', { ttlSec: 10 * 24 * 3600 })).status, 400);
    assert.equal((await invite('standup', { role: 'admin' })).status, 400);
    assert.equal((await invite('no%20spaces', {})).status, 400);
    assert.equal((await invite('standup', {}, 'wrong-key-xxxxxxxxxxxxxxx')).status, 401);
  });

  it('the socket handshake needs an invite or an API key; an invite opens its own session only', async () => {
    assert.equal(await refusal(server.url, {}), 'unauthorized');
    assert.equal(await refusal(server.url, { token: 'wrong-key-xxxxxxxxxxxxxxx' }), 'unauthorized');
    const forged = await new InviteSigner(new TextEncoder().encode('another secret of thirty-two characters!')).sign('standup', 'participant', 600);
    assert.equal(await refusal(server.url, { token: forged.token }), 'unauthorized');
    const expired = await new InviteSigner(new TextEncoder().encode(SECRET)).sign('standup', 'participant', 1);
    await sleep(2100);
    assert.equal(await refusal(server.url, { token: expired.token }), 'unauthorized');

    const { token } = inviteSchema.parse(await (await invite('room-a', {})).json());
    const holder = await open({ token });
    assert.equal(codeOf(await request(holder, 'session:join', { sessionId: 'room-b' })), 'forbidden');
    const joined = await request<JoinResult>(holder, 'session:join', { sessionId: 'room-a', name: 'Invited' });
    assert.ok(joined.ok && joined.role === 'participant');
    // An API key opens any session.
    const keyed = await open({ token: KEY });
    assert.equal(codeOf(await request(keyed, 'session:join', { sessionId: 'room-b' })), 'ok');
  });

  it('observers receive emotions and timelines; their frames are refused with forbidden', async () => {
    const participant = await open({ token: KEY });
    assert.equal(codeOf(await request(participant, 'session:join', { sessionId: 'watched', name: 'Speaker' })), 'ok');
    const { token } = inviteSchema.parse(await (await invite('watched', { role: 'observer' })).json());
    const observer = await open({ token });
    const joined = await request<JoinResult>(observer, 'session:join', { sessionId: 'watched', name: 'Watcher' });
    assert.ok(joined.ok && joined.role === 'observer');
    const seen = new Promise<EmotionsEvent>((resolve) => observer.once('emotions', resolve));
    const answer = await request<FrameResult>(participant, 'frame', { seq: 1, image: readPhoto('group1.jpg') });
    assert.ok(answer.ok, JSON.stringify(answer));
    assert.equal((await seen).faces.length, answer.faces.length);
    const timeline = await request<TimelineResult>(observer, 'timeline:get', {});
    assert.ok(timeline.ok && timeline.participants.some((p) => p.name === 'Speaker' && p.tracks.length > 0));
    assert.equal(codeOf(await request(observer, 'frame', { seq: 1, image: readPhoto('group1.jpg') })), 'forbidden');
  });

  it('a participant invite invites others to its own session only, for no longer than itself; an observer invites no one', async () => {
    const participant = inviteSchema.parse(await (await invite('team', { ttlSec: 300 })).json());
    const observer = inviteSchema.parse(await (await invite('team', { role: 'observer' })).json());
    const passedOn = await invite('team', { role: 'observer' }, participant.token);
    assert.equal(passedOn.status, 201);
    assert.ok(Date.parse(inviteSchema.parse(await passedOn.json()).expiresAt) <= Date.parse(participant.expiresAt));
    assert.equal((await invite('team', { ttlSec: 3600 }, participant.token)).status, 400);
    assert.equal((await invite('other-team', {}, participant.token)).status, 403);
    assert.equal((await invite('team', {}, observer.token)).status, 403);
    // An invite is no API key: the rest of the API refuses it.
    const res = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${participant.token}` } });
    assert.equal(res.status, 401);
  });

  it('refuses a foreign Origin on HTTP and on both socket.io transports; allowed origins get CORS headers', async () => {
    const post = (origin: string) =>
      fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { Origin: origin, Authorization: `Bearer ${KEY}`, 'Content-Type': 'image/jpeg' }, body: new Uint8Array(readPhoto('group1.jpg')) });
    const foreign = await post(FOREIGN);
    assert.equal(foreign.status, 403);
    assert.equal(((await foreign.json()) as { error: { code: string } }).error.code, 'forbidden');
    const allowed = await post(ALLOWED);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED);
    const preflight = await fetch(`${server.url}/api/v1/analyze`, { method: 'OPTIONS', headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    // The server's own origin is always allowed (the pages it serves).
    const same = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { Origin: server.url, Authorization: `Bearer ${KEY}`, 'Content-Type': 'image/jpeg' }, body: new Uint8Array(readPhoto('group1.jpg')) });
    assert.equal(same.status, 200);

    for (const transport of ['polling', 'websocket'] as const) {
      assert.match(await refusal(server.url, { token: KEY, transport, headers: { Origin: FOREIGN } }), /^refused without a code/, transport);
      assert.equal(await refusal(server.url, { token: KEY, transport, headers: { Origin: ALLOWED } }), 'connected', transport);
    }
  });

  it('a video job belongs to the key that uploaded it: another key gets 404 and cannot follow it; a socket follows a bounded number of jobs', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-owned-'));
    const uploadAs = async (key: string, name: string) => {
      const form = new FormData();
      form.append('video', new Blob([readFileSync(makeGrayVideo(path.join(dir, name), 2))]), name);
      const res = await fetch(`${server.url}/api/v1/videos`, { method: 'POST', headers: { Authorization: `Bearer ${key}` }, body: form });
      assert.equal(res.status, 202);
      return ((await res.json()) as { id: string }).id;
    };
    try {
      const mine = await uploadAs(KEY, 'mine.mp4');
      const job = (key: string) => fetch(`${server.url}/api/v1/videos/${mine}`, { headers: { Authorization: `Bearer ${key}` } });
      assert.equal((await job(KEY)).status, 200);
      assert.equal((await job(OTHER_KEY)).status, 404);
      const list = (await (await fetch(`${server.url}/api/v1/videos`, { headers: { Authorization: `Bearer ${OTHER_KEY}` } })).json()) as { jobs: unknown[] };
      assert.deepEqual(list.jobs, []);

      const stranger = await open({ token: OTHER_KEY });
      assert.equal(codeOf(await request(stranger, 'video:subscribe', { id: mine })), 'not_found');
      const { token } = inviteSchema.parse(await (await invite('standup', {})).json());
      assert.equal(codeOf(await request(await open({ token }), 'video:subscribe', { id: mine })), 'not_found', 'an invite owns no jobs');
      const owner = await open({ token: KEY });
      assert.equal(codeOf(await request(owner, 'video:subscribe', { id: mine })), 'ok');
      assert.equal(codeOf(await request(owner, 'video:subscribe', { id: mine })), 'ok', 'the same job again takes no new place');
      const second = await uploadAs(KEY, 'second.mp4');
      assert.equal(codeOf(await request(owner, 'video:subscribe', { id: second })), 'rate_limited');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends security headers on every answer', async () => {
    for (const route of ['/', '/api/v1/analyze', '/healthz']) {
      const res = await fetch(`${server.url}${route}`);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', route);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, route);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, route);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', route);
      assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN', route);
    }
  });
});

describe('protected mode (no API keys configured)', { timeout: 300_000 }, () => {
  let server: RunningServer;

  before(async () => {
    // TRUST_PROXY lets the test speak as another machine (X-Forwarded-For), as a proxy in front would.
    server = await startTestServer({ TRUST_PROXY: 'true' });
  });

  after(async () => {
    await server.close();
  });

  it('serves this machine without credentials and refuses every other client, pages and sockets included', async () => {
    assert.equal((await fetch(`${server.url}/`)).status, 200);
    const remote = { 'X-Forwarded-For': '203.0.113.9' };
    for (const route of ['/', '/api/v1/analyze', '/metrics']) {
      const res = await fetch(`${server.url}${route}`, { headers: remote });
      assert.equal(res.status, 403, route);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /MOODWIRE_API_KEYS/);
    }
    assert.equal(await refusal(server.url, { headers: remote }), 'forbidden');
    assert.equal(await refusal(server.url, {}), 'connected');
  });
});
