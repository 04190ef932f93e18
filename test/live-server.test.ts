/**
 * The live server end to end: a real server on port 0 (2 worker threads, default detectors),
 * real socket.io clients, the real photos of ../shared/media. Covers face finding on the photos,
 * every refusal of the protocol, backpressure, two clients in one session, timelines,
 * /api/v1/analyze, /readyz, /metrics and tensor leaks in the workers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EMOTIONS } from '../contract/emotions.ts';
import type { Ack, EmotionsEvent, Face, FrameResult, JoinResult, TimelineResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, matchFaces, photoNames, readPhoto, referenceFaces, request, startTestServer } from './live-support.ts';

const MAX_IMAGE_BYTES = 400_000;

function assertProbabilities(scores: Record<string, number>): void {
  assert.deepEqual(Object.keys(scores).sort(), [...EMOTIONS].sort());
  const sum = Object.values(scores).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-6, `probabilities sum to ${sum}`);
  for (const v of Object.values(scores)) assert.ok(v >= 0 && v <= 1);
}

function assertFaceShape(face: Face, width: number, height: number): void {
  assert.equal(typeof face.trackId, 'number');
  assert.ok(face.box.x >= 0 && face.box.y >= 0 && face.box.x + face.box.width <= width && face.box.y + face.box.height <= height);
  assert.ok(face.score > 0 && face.score <= 1);
  assertProbabilities(face.emotions);
  assertProbabilities(face.smoothed);
  assert.ok(EMOTIONS.includes(face.dominant));
}

describe('live server', { timeout: 600_000 }, () => {
  let server: RunningServer;
  const clients: TestClient[] = [];
  const client = async (): Promise<TestClient> => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    return socket;
  };
  const joined = async (sessionId: string, name?: string): Promise<{ socket: TestClient; participantId: string }> => {
    const socket = await client();
    const ack = await request<JoinResult>(socket, 'session:join', { sessionId, ...(name ? { name } : {}) });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return { socket, participantId: (ack as JoinResult & { ok: true }).participantId };
  };

  before(async () => {
    server = await startTestServer({ MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES) });
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    await server.ready;
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await server.close();
  });

  it('/readyz says ready with the backend and model once models are loaded', async () => {
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; backend: string; workers: number; modelVersion: string };
    assert.equal(body.status, 'ready');
    assert.equal(body.backend, 'wasm');
    assert.equal(body.workers, 2);
    assert.ok(body.modelVersion.length > 0);
  });

  it('finds at least 21 of the 22 faces in the six photos over socket.io (each a scene cut, so a keyframe) and invents none', async () => {
    const { socket } = await joined('photos');
    const before = await server.inference()!.pool.memory();
    let found = 0;
    let seq = 0;
    for (const name of photoNames) {
      const ack = await request<FrameResult>(socket, 'frame', { seq: ++seq, ts: Date.now(), image: readPhoto(name) });
      assert.equal(ack.ok, true, `${name}: ${JSON.stringify(ack)}`);
      const result = ack as FrameResult & { ok: true };
      assert.equal(result.seq, seq);
      assert.ok(result.timings.total! > 0 && result.timings.detect! > 0);
      assert.ok(result.faces.every((f) => f.origin === 'detection'), `${name}: a new scene's faces are detected, not tracked`);
      for (const face of result.faces) assertFaceShape(face, result.width, result.height);
      const { matched, invented } = matchFaces(result.faces.map((f) => f.box), referenceFaces.photos[name]!);
      assert.equal(invented, 0, `${name}: ${invented} faces that are not faces`);
      found += matched;
    }
    assert.ok(found >= 21, `found ${found} of 22 faces`);
    // Tensor leak check: the workers hold as many tensors after the frames as before.
    const afterFrames = await server.inference()!.pool.memory();
    assert.deepEqual(afterFrames.map((m) => m.numTensors), before.map((m) => m.numTensors));
  });

  it('POST /api/v1/analyze finds exactly the faces of each photo (SSD) with the live face shape', async () => {
    let total = 0;
    for (const name of photoNames) {
      const res = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(readPhoto(name)) });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { width: number; height: number; faces: Face[] };
      const reference = referenceFaces.photos[name]!;
      const { matched, invented } = matchFaces(body.faces.map((f) => f.box), reference);
      assert.equal(invented, 0, name);
      assert.equal(matched, reference.length, name);
      body.faces.forEach((face, i) => {
        assertFaceShape(face, body.width, body.height);
        assert.equal(face.trackId, i + 1);
      });
      total += matched;
    }
    assert.equal(total, 22);
  });

  it('POST /api/v1/analyze refuses a wrong type, bad bytes and oversized bodies with JSON errors', async () => {
    const post = async (type: string, body: Uint8Array | Buffer | string): Promise<{ status: number; code: string }> => {
      const res = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.ok(json.error.message.length > 0);
      return { status: res.status, code: json.error.code };
    };
    assert.deepEqual(await post('text/plain', 'hello'), { status: 415, code: 'unsupported_media_type' });
    assert.deepEqual(await post('image/gif', readPhoto('group1.jpg')), { status: 415, code: 'unsupported_media_type' });
    assert.deepEqual(await post('image/jpeg', new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3, 4])), { status: 422, code: 'undecodable_image' });
    assert.deepEqual(await post('image/png', 'not a png at all'), { status: 422, code: 'undecodable_image' });
    assert.deepEqual(await post('image/jpeg', new Uint8Array(MAX_IMAGE_BYTES + 10)), { status: 413, code: 'image_too_large' });
    const missing = await fetch(`${server.url}/api/v1/nothing`);
    assert.equal(missing.status, 404);
  });

  it('refuses frames before session:join', async () => {
    const socket = await client();
    const ack = await request(socket, 'frame', { seq: 1, image: readPhoto('group1.jpg') });
    assert.deepEqual(ack.ok ? 'ok' : ack.error.code, 'not_joined');
  });

  it('refuses invalid session ids and malformed joins', async () => {
    const socket = await client();
    for (const sessionId of ['', 'a'.repeat(65), 'has space', 'slash/id', 'dots.id', 'ünicode', 42]) {
      const ack = await request(socket, 'session:join', { sessionId });
      assert.equal(ack.ok, false, `accepted ${String(sessionId)}`);
      if (!ack.ok) assert.equal(ack.error.code, 'invalid_session_id');
    }
    for (const payload of ['room', null, 7, []]) {
      const ack = await request(socket, 'session:join', payload);
      assert.equal(ack.ok ? 'ok' : ack.error.code, 'invalid_payload');
    }
    const ok = await request<JoinResult>(socket, 'session:join', { sessionId: 'a'.repeat(64) });
    assert.equal(ok.ok, true);
  });

  it('refuses every malformed frame with a typed error and keeps the socket usable', async () => {
    const { socket } = await joined('bad-frames');
    const codeOf = async (payload: unknown): Promise<string> => {
      const ack = await request(socket, 'frame', payload);
      assert.equal(ack.ok, false, `accepted ${JSON.stringify(payload)?.slice(0, 80)}`);
      return ack.ok ? 'ok' : ack.error.code;
    };
    const image = readPhoto('group1.jpg');
    assert.equal(await codeOf('just a string'), 'invalid_payload');
    assert.equal(await codeOf(null), 'invalid_payload');
    assert.equal(await codeOf(12), 'invalid_payload');
    assert.equal(await codeOf({ image }), 'invalid_payload');
    assert.equal(await codeOf({ seq: -1, image }), 'invalid_payload');
    assert.equal(await codeOf({ seq: 1.5, image }), 'invalid_payload');
    assert.equal(await codeOf({ seq: '1', image }), 'invalid_payload');
    assert.equal(await codeOf({ seq: 1 }), 'invalid_payload');
    assert.equal(await codeOf({ seq: 1, image: image.toString('base64') }), 'invalid_payload');
    assert.equal(await codeOf({ seq: 1, image: { data: [1, 2, 3] } }), 'invalid_payload');
    assert.equal(await codeOf({ seq: 1, image: Buffer.from('garbage bytes, not an image') }), 'undecodable_image');
    assert.equal(await codeOf({ seq: 1, image: image.subarray(0, 2000) }), 'undecodable_image');
    assert.equal(await codeOf({ seq: 1, image: Buffer.alloc(0) }), 'undecodable_image');
    const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
    assert.equal(await codeOf({ seq: 1, image: gif }), 'undecodable_image');
    assert.equal(await codeOf({ seq: 1, image: Buffer.alloc(MAX_IMAGE_BYTES + 1, 7) }), 'image_too_large');
    // Small in bytes, too many pixels: refused from the header, before decoding.
    const huge = await sharp({ create: { width: 5000, height: 4000, channels: 3, background: '#808080' } }).png().toBuffer();
    assert.ok(huge.byteLength < MAX_IMAGE_BYTES);
    assert.equal(await codeOf({ seq: 1, image: huge }), 'image_too_large');
    // A callback alone, without a payload, is answered too.
    assert.equal(await codeOf(undefined), 'invalid_payload');
    const callbackOnly = await (socket.timeout(10_000) as unknown as { emitWithAck(event: string): Promise<Ack<FrameResult>> }).emitWithAck('frame');
    assert.equal(callbackOnly.ok ? 'ok' : callbackOnly.error.code, 'invalid_payload');
    // A frame with no callback must not break anything either.
    socket.emit('frame', 'no ack' as never, undefined as never);
    const good = await request<FrameResult>(socket, 'frame', { seq: 2, image });
    assert.equal(good.ok, true);
  });

  it('answers a superseded frame as frame_dropped (latest frame wins, one in flight, one waiting)', async () => {
    const { socket } = await joined('backpressure');
    const image = readPhoto('group5.jpg');
    const acks = await Promise.all([1, 2, 3, 4].map((seq) => request<FrameResult>(socket, 'frame', { seq, image })));
    const codes = acks.map((ack) => (ack.ok ? 'ok' : ack.error.code));
    assert.deepEqual(codes, ['ok', 'frame_dropped', 'frame_dropped', 'ok']);
    assert.equal((acks[3] as FrameResult & { ok: true }).seq, 4);
  });

  it('two clients in one session see each other\'s emotions, and timeline:get returns per-track timelines', async () => {
    const a = await joined('pair', 'alice');
    const b = await joined('pair', 'bob');
    const outsider = await joined('other');
    const seenByB: EmotionsEvent[] = [];
    const seenByA: EmotionsEvent[] = [];
    const seenByOutsider: EmotionsEvent[] = [];
    b.socket.on('emotions', (e) => seenByB.push(e));
    a.socket.on('emotions', (e) => seenByA.push(e));
    outsider.socket.on('emotions', (e) => seenByOutsider.push(e));

    const image = readPhoto('group4.jpg');
    for (let seq = 1; seq <= 3; seq++) {
      const ack = await request<FrameResult>(a.socket, 'frame', { seq, ts: 1000 * seq, image });
      assert.equal(ack.ok, true);
    }
    const ackB = await request<FrameResult>(b.socket, 'frame', { seq: 1, ts: 5000, image: readPhoto('group1.jpg') });
    assert.equal(ackB.ok, true);
    await new Promise((resolve) => setTimeout(resolve, 200));

    assert.deepEqual(seenByB.map((e) => [e.participantId, e.seq, e.ts]), [[a.participantId, 1, 1000], [a.participantId, 2, 2000], [a.participantId, 3, 3000]]);
    assert.deepEqual(seenByA.map((e) => [e.participantId, e.seq]), [[b.participantId, 1]]);
    assert.equal(seenByOutsider.length, 0);
    const lastFaces = seenByB[2]!.faces;
    assert.ok(lastFaces.length >= 3);
    // Same photo three times: the same trackIds each time.
    assert.deepEqual(seenByB[0]!.faces.map((f) => f.trackId).sort(), lastFaces.map((f) => f.trackId).sort());

    const timeline = await request<TimelineResult>(b.socket, 'timeline:get', {});
    assert.equal(timeline.ok, true);
    const t = timeline as TimelineResult & { ok: true };
    assert.equal(t.sessionId, 'pair');
    const ofA = t.participants.find((p) => p.participantId === a.participantId)!;
    assert.equal(ofA.name, 'alice');
    assert.equal(ofA.present, true);
    assert.equal(ofA.tracks.length, lastFaces.length);
    for (const track of ofA.tracks) {
      assert.deepEqual(track.samples.map((s) => s.seq), [1, 2, 3]);
      assert.deepEqual(track.samples.map((s) => s.ts), [1000, 2000, 3000]);
      for (const s of track.samples) assertProbabilities(s.smoothed);
    }
    const since = await request<TimelineResult>(b.socket, 'timeline:get', { participantId: a.participantId, sinceTs: 2000 });
    assert.equal(since.ok, true);
    const onlyA = (since as TimelineResult & { ok: true }).participants;
    assert.equal(onlyA.length, 1);
    for (const track of onlyA[0]!.tracks) assert.deepEqual(track.samples.map((s) => s.seq), [3]);
    const unknown = await request(b.socket, 'timeline:get', { participantId: 'nobody' });
    assert.equal(unknown.ok ? 'ok' : unknown.error.code, 'not_found');
    const bad = await request(b.socket, 'timeline:get', { sinceTs: 'yesterday' });
    assert.equal(bad.ok ? 'ok' : bad.error.code, 'invalid_payload');
    const notJoined = await request(await client(), 'timeline:get', {});
    assert.equal(notJoined.ok ? 'ok' : notJoined.error.code, 'not_joined');

    const left = new Promise((resolve) => b.socket.once('participant:left', resolve));
    a.socket.disconnect();
    await left;
    const afterLeave = await request<TimelineResult>(b.socket, 'timeline:get', { participantId: a.participantId });
    assert.equal(afterLeave.ok, true);
    assert.equal((afterLeave as TimelineResult & { ok: true }).participants[0]!.present, false);
  });

  it('video:subscribe refuses unknown jobs and bad ids', async () => {
    const socket = await client();
    // Following a job needs the job (and to own it: test/security-*.test.ts).
    const unknown = await request(socket, 'video:subscribe', { id: 'job_1' });
    assert.equal(unknown.ok ? 'ok' : unknown.error.code, 'not_found');
    const bad = await request(socket, 'video:subscribe', { id: '../etc' });
    assert.equal(bad.ok ? 'ok' : bad.error.code, 'invalid_payload');
  });

  it('/metrics exposes the pipeline metrics with what this run did', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['moodwire_stage_duration_seconds_bucket{le="0.001",stage="detect",source="live"}', 'moodwire_model_info{', 'moodwire_tf_tensors', 'moodwire_connected_sockets']) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
    // Counters of known labels start at 0, so check that this run moved them, not just that they exist.
    const valueOf = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `missing ${series}`);
      return Number(line.slice(series.length + 1));
    };
    for (const series of [
      'moodwire_frames_processed_total{source="live"}',
      'moodwire_frames_processed_total{source="image"}',
      'moodwire_frames_dropped_total{reason="superseded"}',
      'moodwire_errors_total{code="undecodable_image"}',
      'moodwire_batch_size_count',
      'moodwire_faces_classified_total{source="live"}',
    ]) {
      assert.ok(valueOf(series) > 0, `${series} is ${valueOf(series)}`);
    }
  });
});
