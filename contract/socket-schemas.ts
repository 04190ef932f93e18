/**
 * zod schemas for every client payload: the socket handlers validate at the edge with these, and
 * the request types of socket.ts are inferred from them.
 */
import { z } from 'zod';
import { SESSION_ID_PATTERN } from './socket.ts';

export const joinSchema = z.object({
  sessionId: z.string().regex(SESSION_ID_PATTERN, 'session ids are 1-64 characters of A-Z a-z 0-9 _ -'),
  name: z.string().trim().min(1).max(64).optional(),
});

export const leaveSchema = z.object({}).default({});

const binary = z.custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, {
  message: 'image must be binary (JPEG, PNG or WebP bytes), not a string or object',
});

export const frameSchema = z.object({
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  ts: z.number().finite().optional(),
  image: binary,
});

export const timelineSchema = z
  .object({
    participantId: z.string().min(1).max(64).optional(),
    sinceTs: z.number().finite().optional(),
  })
  .default({});

export const videoSubscribeSchema = z.object({
  id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'video ids are letters, digits, _ and -'),
});

/** First issue of a failed parse, as one readable line. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid payload';
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}
