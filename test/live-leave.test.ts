/**
 * A participant who leaves while one of its frames is still being analysed (issue 21, item 2):
 * a real server on port 0, real socket.io clients, a real photo of ../shared/media. The sender
 * sends a frame and leaves at once (session:leave, disconnect, or a join to another session); a
 * second member of the session records `participant:left` and `emotions` in arrival order. No
 * `emotions` of the leaver may arrive after `participant:left`, the frame still gets its one
 * answer (a `not_joined` refusal), and the leaver's timeline does not grow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FrameResult, JoinResult, TimelineResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, readPhoto, request, startTestServer } from './live-support.ts';

const ROUNDS = 4;
/** A live frame of this photo takes ~50-100 ms to analyse; far longer than the leave takes to arrive. */
const PHOTO = 'group1.jpg';

async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Seen = { event: 'participant:left' | 'emotions'; participantId: string };

describe('a participant who leaves with a frame in analysis', { timeout: 300_000 }, () => {
  let server: RunningServer;
  const clients: TestClient[] = [];
  const image = readPhoto(PHOTO);

  const join = async (sessionId: string): Promise<{ socket: TestClient; participantId: string }> => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    const ack = await request<JoinResult>(socket, 'session:join', { sessionId });
    assert.ok(ack.ok, JSON.stringify(ack));
    return { socket, participantId: ack.participantId };
  };

  /** An observer in `sessionId` that records participant:left and emotions in arrival order. */
  const observe = async (sessionId: string): Promise<{ socket: TestClient; seen: Seen[]; left: Promise<void> }> => {
    const { socket } = await join(sessionId);
    const seen: Seen[] = [];
    const left = new Promise<void>((resolve) => {
      socket.on('participant:left', ({ participantId }) => {
        seen.push({ event: 'participant:left', participantId });
        resolve();
      });
    });
    socket.on('emotions', ({ participantId }) => seen.push({ event: 'emotions', participantId }));
    return { socket, seen, left };
  };

  const assertNothingAfterLeft = (seen: Seen[], leaver: string, round: string): void => {
    const leftAt = seen.findIndex((s) => s.event === 'participant:left' && s.participantId === leaver);
    assert.ok(leftAt >= 0, `${round}: no participant:left (${JSON.stringify(seen)})`);
    const late = seen.slice(leftAt + 1).filter((s) => s.event === 'emotions' && s.participantId === leaver);
    assert.equal(late.length, 0, `${round}: emotions of the leaver after participant:left: ${JSON.stringify(seen)}`);
  };

  /** The leaver has no samples in the session's timelines (its only frame was refused). */
  const assertNoSamples = async (observer: TestClient, leaver: string, round: string): Promise<void> => {
    const timeline = await request<TimelineResult>(observer, 'timeline:get', {});
    assert.ok(timeline.ok, JSON.stringify(timeline));
    const entry = timeline.participants.find((p) => p.participantId === leaver);
    assert.ok(entry, `${round}: the leaver is not in the timelines`);
    assert.equal(entry.present, false);
    assert.equal(entry.tracks.reduce((n, t) => n + t.samples.length, 0), 0, `${round}: the refused frame reached the timeline`);
  };

  before(async () => {
    // Every round opens sessions whose observers stay: more than MAX_SESSIONS_PER_ADDRESS's default 8 from 127.0.0.1.
    server = await startTestServer({ MAX_SESSIONS_PER_ADDRESS: '100' });
    await server.ready;
    // Warm up the live path so the rounds measure the race, not the first frame's set-up.
    const { socket } = await join('warm-up');
    const ack = await request<FrameResult>(socket, 'frame', { seq: 0, image });
    assert.ok(ack.ok && ack.faces.length > 0, JSON.stringify(ack).slice(0, 300));
    socket.disconnect();
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await server.close();
  });

  it('session:leave right after a frame: no emotions after participant:left, the frame is answered not_joined', async () => {
    const series = 'moodwire_frames_dropped_total{reason="disconnected"}';
    for (let round = 0; round < ROUNDS; round++) {
      const sessionId = `leave-${round}`;
      const observer = await observe(sessionId);
      const sender = await join(sessionId);
      const dropped = await metric(server.url, series);
      const frameAck = request<FrameResult>(sender.socket, 'frame', { seq: round, image });
      const leaveAck = await request(sender.socket, 'session:leave', {});
      assert.deepEqual(leaveAck, { ok: true });
      const answer = await frameAck;
      assert.deepEqual(answer, { ok: false, error: { code: 'not_joined', message: 'left the session before the frame was analysed' } });
      await observer.left;
      await sleep(300);
      assertNothingAfterLeft(observer.seen, sender.participantId, `round ${round}`);
      await assertNoSamples(observer.socket, sender.participantId, `round ${round}`);
      // Refused after its analysis (the race this test is about), not before it.
      assert.equal(await metric(server.url, series), dropped + 1, `round ${round}: the frame was not in analysis when its sender left`);
    }
  });

  it('disconnect right after a frame: no emotions after participant:left, the result is dropped', async () => {
    const series = 'moodwire_frames_dropped_total{reason="disconnected"}';
    for (let round = 0; round < ROUNDS; round++) {
      const sessionId = `disconnect-${round}`;
      const observer = await observe(sessionId);
      const sender = await join(sessionId);
      const dropped = await metric(server.url, series);
      // socket.io ignores events it has not dispatched yet when the disconnect arrives in the same
      // read, so the client disconnects as soon as the server's frame handler has run (it starts
      // the analysis synchronously; this listener is registered after it).
      const serverSocket = server.io.of('/').sockets.get(sender.socket.id!);
      assert.ok(serverSocket, 'no server-side socket for the sender');
      const received = new Promise<void>((resolve) => serverSocket.on('frame', () => resolve()));
      sender.socket.emit('frame', { seq: round, image }, () => undefined);
      await received;
      sender.socket.disconnect();
      await observer.left;
      // Long enough for the frame to finish analysis and (before the fix) be broadcast.
      await sleep(1500);
      assertNothingAfterLeft(observer.seen, sender.participantId, `round ${round}`);
      await assertNoSamples(observer.socket, sender.participantId, `round ${round}`);
      // The frame was in analysis when its sender left, and its result was dropped.
      assert.equal(await metric(server.url, series), dropped + 1, `round ${round}: the frame's result was not dropped`);
    }
  });

  it('a join to another session right after a frame: the frame reaches neither session', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const observer = await observe(`from-${round}`);
      const elsewhere = await observe(`to-${round}`);
      const sender = await join(`from-${round}`);
      const frameAck = request<FrameResult>(sender.socket, 'frame', { seq: round, image });
      const moved = await request<JoinResult>(sender.socket, 'session:join', { sessionId: `to-${round}` });
      assert.ok(moved.ok, JSON.stringify(moved));
      const answer = await frameAck;
      assert.ok(!answer.ok && answer.error.code === 'not_joined', JSON.stringify(answer).slice(0, 300));
      await observer.left;
      await sleep(300);
      assertNothingAfterLeft(observer.seen, sender.participantId, `round ${round}`);
      // The new membership is another participant: the old frame is not relayed under it either.
      assert.deepEqual(elsewhere.seen.filter((s) => s.event === 'emotions'), [], `round ${round}: the frame reached the new session`);
    }
  });
});
