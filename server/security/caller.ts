/**
 * Who is calling: what every route and socket handler asks before it shows or changes anything.
 * The API-key middleware (api-keys.ts) and the socket.io handshake (socket-auth.ts) set it; the
 * video routes key job ownership and per-client limits by `owner`.
 */
import type { Response } from 'express';
import type { InviteRole } from '../../contract/http.ts';

export interface Caller {
  /**
   * `key`: an API key; `invite`: an invite token (one session, one role); `local`: a loopback
   * client of a server with no API keys (protected mode); `open`: MOODWIRE_AUTH=off.
   */
  kind: 'key' | 'invite' | 'local' | 'open';
  /**
   * Whose jobs these are: `key:<first 16 hex of the key's SHA-256>` (never the key itself),
   * `local`, or `open`. Invite holders own no jobs.
   */
  owner: string;
  /** The client's address (the proxy's X-Forwarded-For under TRUST_PROXY); per-address limits count by it. */
  address: string;
  /** For invites: the one session the holder may join, and as what. */
  invite?: { sessionId: string; role: InviteRole; expiresAt: number };
}

/** The caller of a request that passed the API-key middleware (it always sets one). */
export function callerOf(res: Response): Caller {
  const caller = (res.locals as { caller?: Caller }).caller;
  if (!caller) throw new Error('callerOf: the API-key middleware did not run for this route');
  return caller;
}

/** Per-client limits (uploads, queued jobs) count per owner, and per address where there is no key. */
export function limitKey(caller: Caller): string {
  return caller.kind === 'key' ? caller.owner : `addr:${caller.address}`;
}
