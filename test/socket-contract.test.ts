/**
 * The socket contract: compile-time checks of the event map (this file is type-checked by
 * `npm test` before any test runs; a wrong type in contract/socket.ts fails there), and runtime
 * checks that the zod schemas the server validates with accept exactly the typed payloads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { ERROR_CODES, toWireErrorCode, type ErrorCode, type WireErrorCode } from '../contract/errors.ts';
import { frameSchema, joinSchema, leaveSchema, timelineSchema, videoSubscribeSchema } from '../contract/socket-schemas.ts';
import type { Ack, ClientToServerEvents, FrameRequest, FrameResult, JoinRequest, ServerToClientEvents, TimelineRequest } from '../contract/socket.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

// Request types are the schemas' inputs, field for field.
expectType<Equal<JoinRequest, { sessionId: string; name?: string | undefined }>>();
expectType<Equal<FrameRequest, { seq: number; ts?: number | undefined; image: Uint8Array | ArrayBuffer }>>();
expectType<Equal<TimelineRequest, { participantId?: string | undefined; sinceTs?: number | undefined } | undefined>>();
// The frame ack carries a FrameResult.
expectType<Equal<Parameters<Parameters<ClientToServerEvents['frame']>[1]>[0], Ack<FrameResult>>>();

/** Never called: these lines only have to type-check (or fail to, where marked). */
export function typedClientUsage(socket: Socket<ServerToClientEvents, ClientToServerEvents>): void {
  socket.emit('frame', { seq: 1, image: new ArrayBuffer(8) }, (ack) => {
    if (ack.ok) void ack.faces.map((face) => [face.trackId, face.box.width, face.smoothed.happy]);
    else void ack.error.code.toUpperCase();
  });
  socket.emit('session:join', { sessionId: 'standup' }, (ack) => void (ack.ok && ack.participants.length));
  socket.on('emotions', (event) => void event.faces[0]?.dominant);
  // @ts-expect-error seq is a number
  socket.emit('frame', { seq: '1', image: new ArrayBuffer(8) }, () => undefined);
  // @ts-expect-error image is binary, not a string
  socket.emit('frame', { seq: 1, image: 'base64...' }, () => undefined);
  // @ts-expect-error session:join needs a sessionId
  socket.emit('session:join', { name: 'x' }, () => undefined);
  // @ts-expect-error no such event
  socket.emit('session:destroy', {}, () => undefined);
  // @ts-expect-error emotions events carry faces, not a label
  socket.on('emotions', (event) => void event.label);
}

describe('socket contract', () => {
  it('the schemas accept the typed payloads and refuse others', () => {
    const join: JoinRequest = { sessionId: 'standup', name: 'Ada' };
    assert.ok(joinSchema.safeParse(join).success);
    assert.ok(!joinSchema.safeParse({ sessionId: 'has space' }).success);
    const frame: FrameRequest = { seq: 3, ts: 1000, image: new Uint8Array([1, 2, 3]) };
    assert.ok(frameSchema.safeParse(frame).success);
    assert.ok(frameSchema.safeParse({ seq: 0, image: new ArrayBuffer(2) }).success);
    assert.ok(!frameSchema.safeParse({ seq: -1, image: new ArrayBuffer(2) }).success);
    assert.ok(!frameSchema.safeParse({ seq: 1, image: 'abc' }).success);
    assert.deepEqual(timelineSchema.parse(undefined), {});
    assert.deepEqual(leaveSchema.parse(undefined), {});
    assert.ok(videoSubscribeSchema.safeParse({ id: 'a-b_c' }).success);
    assert.ok(!videoSubscribeSchema.safeParse({ id: '../x' }).success);
  });

  it('every error code reaches a socket as itself or, if HTTP-only, as bad_request', () => {
    const httpOnly: ErrorCode[] = ['unsupported_media_type', 'undecodable_video', 'payload_too_large', 'video_too_long'];
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const wire: WireErrorCode = toWireErrorCode(code);
      assert.equal(wire, httpOnly.includes(code) ? 'bad_request' : code);
    }
  });
});
