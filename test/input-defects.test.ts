/**
 * Inputs that lie about themselves, against a real server (the real models, 2 workers): image
 * headers that claim 100000x100000 or 65000x65000 pixels (413 image_too_large on HTTP and on the
 * socket, decided from the header), bodies whose Content-Encoding does not match (400
 * bad_request, no error log) or is unknown (415), and acknowledged events sent with a callback
 * alone. The decode stage is also checked on its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import sharp from 'sharp';
import { AppError } from '../contract/errors.ts';
import type { Ack, JoinResult } from '../contract/socket.ts';
import { decodeImage } from '../server/pipeline/decode.ts';
import { type RunningServer, startServer } from '../server/server.ts';
import { type TestClient, connectClient, readPhoto, request, testConfig } from './live-support.ts';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose IHDR (valid CRC) claims width x height RGB pixels; its data is a few bytes. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(64))), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A real 8x8 baseline JPEG whose SOF0 marker is rewritten to claim width x height. */
async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).jpeg().toBuffer());
  let at = 2; // after SOI
  while (at + 4 <= jpeg.length) {
    assert.equal(jpeg[at], 0xff, 'walking the JPEG markers');
    const marker = jpeg[at + 1]!;
    const length = jpeg.readUInt16BE(at + 2);
    if (marker === 0xc0) {
      jpeg.writeUInt16BE(height, at + 5);
      jpeg.writeUInt16BE(width, at + 7);
      return jpeg;
    }
    at += 2 + length;
  }
  throw new Error('no SOF0 marker in the JPEG sharp wrote');
}

describe('input defects', { timeout: 300_000 }, () => {
  let server: RunningServer;
  let dataDir: string;
  const logged: { level: number; msg: string }[] = [];
  const clients: TestClient[] = [];
  let pngBomb: Buffer;
  let jpegBomb: Buffer;

  before(async () => {
    pngBomb = pngClaiming(100_000, 100_000);
    jpegBomb = await jpegClaiming(65_000, 65_000);
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-defects-'));
    // Every log line at warn and above, to check that a client's mistake logs no error.
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) logged.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    server = await startServer(testConfig({ MOODWIRE_DATA_DIR: dataDir }), pino({ level: 'warn' }, sink));
    await server.ready;
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const client = async (): Promise<TestClient> => {
    const socket = await connectClient(server.url);
    clients.push(socket);
    return socket;
  };

  const post = async (body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; code?: string; message?: string; faces?: unknown[] }> => {
    const res = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers, body: new Uint8Array(body) });
    const json = (await res.json()) as { error?: { code: string; message: string }; faces?: unknown[] };
    return { status: res.status, code: json.error?.code, message: json.error?.message, faces: json.faces };
  };

  it('the test images claim what they should (sharp reads the claimed size from the header)', async () => {
    for (const [bomb, side, format] of [[pngBomb, 100_000, 'png'], [jpegBomb, 65_000, 'jpeg']] as const) {
      const metadata = await sharp(bomb, { limitInputPixels: false }).metadata();
      assert.deepEqual([metadata.format, metadata.width, metadata.height], [format, side, side]);
      assert.ok(bomb.byteLength < 1000, `${format} is ${bomb.byteLength} bytes`);
    }
  });

  it('decodeImage refuses header bombs as image_too_large, before decoding', async () => {
    const limits = { maxImageBytes: 4 * 1024 * 1024, maxImagePixels: 4096 * 4096 };
    for (const bomb of [pngBomb, jpegBomb]) {
      await assert.rejects(decodeImage(bomb, limits), (e: unknown) => e instanceof AppError && e.code === 'image_too_large' && /\d+x\d+ pixels/.test(e.message));
    }
  });

  it('POST /api/v1/analyze answers header bombs 413 image_too_large', async () => {
    const png = await post(pngBomb, { 'Content-Type': 'image/png' });
    assert.deepEqual([png.status, png.code], [413, 'image_too_large']);
    assert.match(png.message!, /100000x100000 pixels/);
    const jpeg = await post(jpegBomb, { 'Content-Type': 'image/jpeg' });
    assert.deepEqual([jpeg.status, jpeg.code], [413, 'image_too_large']);
    assert.match(jpeg.message!, /65000x65000 pixels/);
  });

  it('a socket frame with a header bomb is answered image_too_large and the socket stays usable', async () => {
    const socket = await client();
    assert.equal((await request<JoinResult>(socket, 'session:join', { sessionId: 'bombs' })).ok, true);
    for (const [seq, image] of [[1, pngBomb], [2, jpegBomb]] as const) {
      const ack = await request(socket, 'frame', { seq, image });
      assert.equal(ack.ok ? 'ok' : ack.error.code, 'image_too_large', JSON.stringify(ack));
    }
    const good = await request(socket, 'frame', { seq: 3, image: readPhoto('group1.jpg') });
    assert.equal(good.ok, true, JSON.stringify(good));
  });

  it('a body whose Content-Encoding lies is 400 bad_request; an unknown encoding 415; real gzip works', async () => {
    const photo = readPhoto('group1.jpg');
    const lie = await post(photo, { 'Content-Type': 'image/jpeg', 'Content-Encoding': 'gzip' });
    assert.deepEqual([lie.status, lie.code], [400, 'bad_request']);
    assert.match(lie.message!, /not valid gzip/);
    const truncated = await post(gzipSync(photo).subarray(0, 4000), { 'Content-Type': 'image/jpeg', 'Content-Encoding': 'gzip' });
    assert.deepEqual([truncated.status, truncated.code], [400, 'bad_request']);
    for (const encoding of ['deflate', 'br']) {
      const answer = await post(photo, { 'Content-Type': 'image/jpeg', 'Content-Encoding': encoding });
      assert.deepEqual([answer.status, answer.code], [400, 'bad_request'], encoding);
      assert.match(answer.message!, new RegExp(`not valid ${encoding}`));
    }
    const unknown = await post(photo, { 'Content-Type': 'image/jpeg', 'Content-Encoding': 'compress' });
    assert.deepEqual([unknown.status, unknown.code], [415, 'unsupported_media_type']);
    assert.match(unknown.message!, /Content-Encoding compress/);
    // Honest compression is read as the image it wraps.
    for (const [encoding, body] of [['gzip', gzipSync(photo)], ['br', brotliCompressSync(photo)]] as const) {
      const real = await post(body, { 'Content-Type': 'image/jpeg', 'Content-Encoding': encoding });
      assert.equal(real.status, 200, `${encoding}: ${JSON.stringify(real)}`);
      assert.ok(real.faces!.length > 0);
    }
  });

  it('every acknowledged event sent with a callback alone is answered', async () => {
    const socket = await client();
    const callbackOnly = (event: string): Promise<Ack<unknown>> =>
      (socket.timeout(10_000) as unknown as { emitWithAck(event: string): Promise<Ack<unknown>> }).emitWithAck(event);
    const codeOf = (ack: Ack<unknown>): string => (ack.ok ? 'ok' : ack.error.code);
    // The payload is required: invalid_payload.
    assert.equal(codeOf(await callbackOnly('session:join')), 'invalid_payload');
    assert.equal(codeOf(await callbackOnly('frame')), 'invalid_payload');
    assert.equal(codeOf(await callbackOnly('video:subscribe')), 'invalid_payload');
    // The payload is optional (docs/protocol.md): the request is served.
    assert.equal(codeOf(await callbackOnly('timeline:get')), 'not_joined');
    assert.equal(codeOf(await callbackOnly('session:leave')), 'ok');
    assert.equal((await request<JoinResult>(socket, 'session:join', { sessionId: 'callback-only' })).ok, true);
    assert.equal(codeOf(await callbackOnly('frame')), 'invalid_payload', 'also once joined');
    const timeline = await callbackOnly('timeline:get');
    assert.equal(codeOf(timeline), 'ok');
    assert.equal((timeline as { sessionId?: string }).sessionId, 'callback-only');
    assert.equal(codeOf(await callbackOnly('session:leave')), 'ok');
  });

  it('none of these client mistakes logged an error', () => {
    const errors = logged.filter((line) => line.level >= 50);
    assert.deepEqual(errors, []);
  });
});
