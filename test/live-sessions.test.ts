/** SessionRegistry limits: a full session and a full server are refused with their own codes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../contract/errors.ts';
import { SessionRegistry } from '../server/live/sessions.ts';

const limits = { maxSessions: 2, maxParticipants: 2, timelineMaxSamples: 10, timelineMaxTracks: 4, trackMaxAgeMs: 1500, smoothingTauMs: 400, keyframe: { intervalFrames: 5, intervalMs: 1000 }, graceMs: 0 };
const local = { role: 'participant', address: '127.0.0.1', maxSessionsPerAddress: 100 } as const;
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof AppError ? error.code : 'not an AppError';
  }
};

describe('SessionRegistry limits', () => {
  it('refuses a third participant with session_full, and takes one again after a leave', () => {
    const sessions = new SessionRegistry(limits);
    const first = sessions.join('room', 'a', local);
    sessions.join('room', 'b', local);
    assert.equal(codeOf(() => sessions.join('room', 'c', local)), 'session_full');
    sessions.leave(first);
    assert.equal(codeOf(() => sessions.join('room', 'c', local)), undefined);
  });

  it('refuses a session beyond MAX_SESSIONS with too_many_sessions, while existing sessions still take participants', () => {
    const sessions = new SessionRegistry(limits);
    sessions.join('one', undefined, local);
    const two = sessions.join('two', undefined, local);
    assert.equal(codeOf(() => sessions.join('three', undefined, local)), 'too_many_sessions');
    assert.equal(codeOf(() => sessions.join('two', undefined, local)), undefined);
    assert.equal(sessions.size, 2);
    sessions.leave(two);
    assert.equal(codeOf(() => sessions.join('two', undefined, local)), undefined, 'two still has a present participant');
  });
});
