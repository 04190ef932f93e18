/**
 * Keyframe detection and tracking on the live path, through a real server and real socket.io
 * clients, with frames of ../shared/media/one-face.mp4 (six 4 s shots, one face each) decoded by
 * ffmpeg: faces are followed between keyframes, a cut or a lost face forces the detector on the
 * frame where it happens, a face that leaves is gone from the next answer, every frame gets one
 * answer, and the workers hold no more tensors after a long stream than before it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { iou } from '../contract/geometry.ts';
import type { FrameResult, JoinResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, mediaDir, request, startTestServer } from './live-support.ts';
import { ffmpegEnv, testBinaries } from './video-support.ts';

const FPS = 5;
const SHOT_FRAMES = 4 * FPS;

/** JPEG frames of the first `seconds` of a clip at FPS, in order. */
function clipFrames(file: string, seconds: number): Buffer[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-frames-'));
  try {
    execFileSync(testBinaries().ffmpegPath, ['-loglevel', 'error', '-t', String(seconds), '-i', path.join(mediaDir, file), '-vf', `fps=${FPS}`, '-q:v', '3', path.join(dir, 'f%04d.jpg')]);
    return readdirSync(dir)
      .sort()
      .map((name) => readFileSync(path.join(dir, name)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('live keyframes and tracking', { timeout: 600_000 }, () => {
  let server: RunningServer;
  let frames: Buffer[];
  let blankFrame: Buffer;
  const clients: TestClient[] = [];

  const stream = async (sessionId: string): Promise<{ send: (seq: number, image: Buffer) => Promise<FrameResult> }> => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    const joined = await request<JoinResult>(socket, 'session:join', { sessionId });
    assert.equal(joined.ok, true);
    // A stream's first keyframe starts its schedule at a random phase (streams that start together
    // keyframe apart), which could put a planned keyframe inside a shot. A faceless frame first takes
    // that keyframe, so the next frame (nothing to track) restarts the schedule from zero.
    const blank = await request<FrameResult>(socket, 'frame', { seq: 0, ts: 0, image: blankFrame });
    assert.ok(blank.ok && blank.faces.length === 0, JSON.stringify(blank));
    return {
      async send(seq, image) {
        const ack = await request<FrameResult>(socket, 'frame', { seq: seq + 1, ts: (seq + 1) * 200, image });
        assert.ok(ack.ok, JSON.stringify(ack));
        return ack;
      },
    };
  };

  before(async () => {
    frames = clipFrames('one-face.mp4', 8);
    blankFrame = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#6b6b6b' } }).jpeg().toBuffer();
    // Keyframes only on schedule every 100 frames: every other detection here is a cut or a lost face.
    server = await startTestServer({ ...ffmpegEnv(), LIVE_KEYFRAME_INTERVAL: '100', LIVE_KEYFRAME_MAX_MS: '600000' });
    await server.ready;
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await server.close();
  });

  it('follows the face of each shot with one track id, detecting only on the first frame and at the cut', async () => {
    const { send } = await stream('follow');
    const answers: FrameResult[] = [];
    const followed = async () => [await metric(server.url, 'moodwire_faces_followed_total{by="motion"}'), await metric(server.url, 'moodwire_faces_followed_total{by="crop"}')];
    const [motionBefore, cropBefore] = await followed();
    for (let seq = 0; seq < SHOT_FRAMES; seq++) answers.push(await send(seq, frames[seq]!));
    // Between detections a face moves by its patch for at most LIVE_MOTION_STEPS (2) frames in a row, then the crop detector finds it.
    const [motionAfter, cropAfter] = await followed();
    assert.ok(motionAfter! - motionBefore! > 0, 'no face was moved by a motion step');
    assert.ok(cropAfter! - cropBefore! >= Math.floor((SHOT_FRAMES - 1) / 3), `the crop detector ran ${cropAfter! - cropBefore!} times on ${SHOT_FRAMES - 1} followed frames`);
    const cutsBefore = await metric(server.url, 'moodwire_frames_located_total{source="live",by="cut"}');
    for (let seq = SHOT_FRAMES; seq < 2 * SHOT_FRAMES; seq++) answers.push(await send(seq, frames[seq]!));

    const shot = (n: number) => answers.slice(n * SHOT_FRAMES, (n + 1) * SHOT_FRAMES);
    // Shot 1 shows a face in every frame; it is followed with one id, and only its first frame is a detection.
    const first = shot(0);
    assert.ok(first.every((a) => a.faces.length === 1), `faces per frame: ${first.map((a) => a.faces.length).join(',')}`);
    assert.equal(new Set(first.map((a) => a.faces[0]!.trackId)).size, 1);
    assert.equal(first[0]!.faces[0]!.origin, 'detection');
    assert.ok(first.slice(1).every((a) => a.faces[0]!.origin === 'tracking'), first.map((a) => a.faces[0]!.origin).join(','));
    assert.ok(first.every((a) => a.timings.track !== undefined || a.timings.detect !== undefined));

    // The cut to shot 2 forces a detection on its first frame; no track continues across it.
    const cut = answers[SHOT_FRAMES]!;
    assert.ok(cut.faces.every((f) => f.origin === 'detection'));
    const idsAfter = new Set(shot(1).flatMap((a) => a.faces.map((f) => f.trackId)));
    assert.ok(!idsAfter.has(first[0]!.faces[0]!.trackId), 'a track crossed the cut');
    assert.ok((await metric(server.url, 'moodwire_frames_located_total{source="live",by="cut"}')) >= cutsBefore + 1);

    // Tracked boxes stay on the face the accurate per-image path (SSD) finds, while the camera zooms and sways.
    for (const seq of [3, 9, 15, 19]) {
      const res = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(frames[seq]!) });
      const reference = ((await res.json()) as FrameResult).faces;
      assert.equal(reference.length, 1);
      const overlap = iou(answers[seq]!.faces[0]!.box, reference[0]!.box);
      assert.ok(overlap >= 0.5, `frame ${seq}: IoU ${overlap.toFixed(2)} with SSD`);
    }
  });

  it('drops a face that leaves on the next frame (the lost track forces a detection)', async () => {
    const { send } = await stream('leave');
    for (let seq = 0; seq < 3; seq++) assert.equal((await send(seq, frames[seq]!)).faces.length, 1);
    const last = await send(3, frames[3]!);
    const box = last.faces[0]!.box;
    // The same frame with the face covered: the background stays, the face is gone.
    const meta = await sharp(frames[3]!).metadata();
    const pad = 0.25;
    const left = Math.max(0, Math.round(box.x - pad * box.width));
    const top = Math.max(0, Math.round(box.y - pad * box.height));
    const width = Math.min(meta.width! - left, Math.round(box.width * (1 + 2 * pad)));
    const height = Math.min(meta.height! - top, Math.round(box.height * (1 + 2 * pad)));
    const covered = await sharp(frames[3]!)
      .composite([{ input: { create: { width, height, channels: 3, background: '#6b6b6b' } }, left, top }])
      .jpeg()
      .toBuffer();
    const lostBefore = await metric(server.url, 'moodwire_frames_located_total{source="live",by="lost"}');
    const gone = await send(4, covered);
    assert.deepEqual(gone.faces, []);
    assert.ok((await metric(server.url, 'moodwire_frames_located_total{source="live",by="lost"}')) >= lostBefore + 1);
    const back = await send(5, frames[4]!);
    assert.equal(back.faces.length, 1);
    assert.equal(back.faces[0]!.origin, 'detection');
  });

  it('answers every frame exactly once when a client sends faster than the server analyses', async () => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    assert.equal((await request<JoinResult>(socket, 'session:join', { sessionId: 'burst' })).ok, true);
    const answers = await Promise.all(frames.slice(0, 24).map((image, seq) => request<FrameResult>(socket, 'frame', { seq, image })));
    assert.equal(answers.length, 24);
    const outcomes = answers.map((a) => (a.ok ? 'ok' : a.error.code));
    assert.ok(outcomes.every((o) => o === 'ok' || o === 'frame_dropped'), outcomes.join(','));
    assert.ok(outcomes.filter((o) => o === 'ok').length >= 2);
  });

  it('holds no more tensors in the workers after a long tracked stream than before it', async () => {
    const pool = server.inference()!.pool;
    const before = (await pool.memory()).reduce((n, m) => n + m.numTensors, 0);
    const { send } = await stream('soak');
    for (let seq = 0; seq < 3 * frames.length; seq++) await send(seq, frames[seq % frames.length]!);
    const afterStream = (await pool.memory()).reduce((n, m) => n + m.numTensors, 0);
    assert.equal(afterStream, before);
  });
});
