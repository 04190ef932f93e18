/**
 * Shutdown against a real server (2 workers, the real models): RunningServer.close() stops taking
 * frames, answers the live frames in analysis before sockets close, and gives up on them at the
 * drain deadline (SHUTDOWN_GRACE_MS minus a margin). The analyzer is wrapped so a test knows when
 * a frame is in analysis and can hold it there; the analysis itself is the real one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ack, FrameResult, JoinResult } from '../contract/socket.ts';
import { drainBudgetMs, type RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, readPhoto, request, startTestServer } from './live-support.ts';

interface Hold {
  /** resolves when a frame enters analysis */
  entered: Promise<void>;
  /** lets the held frame go on to the real analysis */
  release(): void;
}

/** Wraps the live analyzer: the next frame to enter analysis waits for release(). */
function holdNextFrame(server: RunningServer): Hold {
  const analyzer = server.inference()!.analyzer;
  const original = analyzer.analyzeEncoded.bind(analyzer);
  let entered!: () => void;
  let release!: () => void;
  const hold: Hold = {
    entered: new Promise<void>((resolve) => (entered = resolve)),
    release: () => release(),
  };
  const released = new Promise<void>((resolve) => (release = resolve));
  analyzer.analyzeEncoded = async (...args) => {
    analyzer.analyzeEncoded = original;
    entered();
    await released;
    return original(...args);
  };
  return hold;
}

async function joinedClient(server: RunningServer, sessionId: string): Promise<{ socket: TestClient; events: string[] }> {
  const socket = await connectClient(server.url);
  const joined = await request<JoinResult>(socket, 'session:join', { sessionId });
  assert.equal(joined.ok, true, JSON.stringify(joined));
  // What reaches this client, in order: acks (pushed by the callers) and the disconnect.
  const events: string[] = [];
  socket.on('disconnect', () => events.push('disconnect'));
  return { socket, events };
}

const codeOf = (ack: Ack<unknown>): string => (ack.ok ? 'ok' : ack.error.code);

describe('shutdown drains live frames', { timeout: 300_000 }, () => {
  it('answers the frame in analysis before disconnecting, refuses new frames, uploads and readiness meanwhile', async () => {
    const server = await startTestServer({ SHUTDOWN_GRACE_MS: '20000' });
    const image = readPhoto('group5.jpg');
    let closed: Promise<void> | undefined;
    try {
      await server.ready;
      const a = await joinedClient(server, 'drain');
      const b = await joinedClient(server, 'drain');

      const hold = holdNextFrame(server);
      const first = request<FrameResult>(a.socket, 'frame', { seq: 1, image }).then((ack) => {
        a.events.push(`ack 1 ${codeOf(ack)}`);
        return ack;
      });
      await hold.entered;
      // Waits behind frame 1 (one in flight, one waiting per socket).
      const waiting = request<FrameResult>(a.socket, 'frame', { seq: 2, image }).then((ack) => {
        a.events.push(`ack 2 ${codeOf(ack)}`);
        return ack;
      });
      await new Promise((r) => setTimeout(r, 200)); // frame 2 reaches the server and waits

      closed = server.close();
      assert.equal(server.stopping(), true);
      // The waiting frame is answered at once, not analysed.
      const second = await waiting;
      assert.equal(codeOf(second), 'shutting_down', JSON.stringify(second));
      // New frames, from the busy socket and from another, are refused.
      assert.equal(codeOf(await request(a.socket, 'frame', { seq: 3, image })), 'shutting_down');
      const other = await request(b.socket, 'frame', { seq: 1, image });
      assert.equal(codeOf(other), 'shutting_down');
      assert.match((other as { error: { message: string } }).error.message, /shutting down/);
      // Not ready while draining; uploads refused with the same code.
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { status: 'stopping' });
      const upload = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(image) });
      assert.equal(upload.status, 503);
      assert.equal(((await upload.json()) as { error: { code: string } }).error.code, 'shutting_down');
      assert.deepEqual(a.events, ['ack 2 shutting_down'], 'nothing else happened to the sender yet');

      const releasedAt = performance.now();
      hold.release();
      const ack = await first;
      const analysedMs = performance.now() - releasedAt;
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal((ack as FrameResult & { ok: true }).seq, 1);
      assert.ok((ack as FrameResult & { ok: true }).faces.length > 0);
      await closed;
      const closedMs = performance.now() - releasedAt;
      // The ack came first, then the server closed the connection.
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(a.events, ['ack 2 shutting_down', 'ack 1 ok', 'disconnect']);
      assert.ok(b.events.includes('disconnect'));
      process.stderr.write(`# held frame answered ${Math.round(analysedMs)} ms after release; close() done ${Math.round(closedMs)} ms after release\n`);
    } finally {
      await (closed ?? server.close());
    }
  });

  it('a frame still in analysis at the drain deadline does not hold shutdown past SHUTDOWN_GRACE_MS', async () => {
    const graceMs = 2000;
    const server = await startTestServer({ SHUTDOWN_GRACE_MS: String(graceMs) });
    try {
      await server.ready;
      const a = await joinedClient(server, 'drain-deadline');
      const hold = holdNextFrame(server);
      void request(a.socket, 'frame', { seq: 1, image: readPhoto('group1.jpg') }).then(
        (ack) => a.events.push(`ack 1 ${codeOf(ack)}`),
        () => a.events.push('no ack'),
      );
      await hold.entered;
      const started = performance.now();
      await server.close(); // the held frame is never released
      const ms = performance.now() - started;
      assert.ok(ms >= drainBudgetMs(graceMs) - 50, `close() gave up after ${Math.round(ms)} ms, before the drain budget`);
      assert.ok(ms < graceMs, `close() took ${Math.round(ms)} ms, the grace is ${graceMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(a.events[0], 'disconnect', `the held frame was answered: ${JSON.stringify(a.events)}`);
      process.stderr.write(`# close() with a frame stuck in analysis: ${Math.round(ms)} ms (drain budget ${drainBudgetMs(graceMs)} ms, grace ${graceMs} ms)\n`);
    } finally {
      await server.close();
    }
  });

  it('drainBudgetMs leaves half the grace, at most 1 s, for closing', () => {
    assert.equal(drainBudgetMs(5000), 4000);
    assert.equal(drainBudgetMs(1000), 500);
    assert.equal(drainBudgetMs(0), 0);
  });
});
