import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ConnectErrorData, HandshakeAuth, ServerToClientEvents } from '../../../contract/socket.ts';

export type MoodwireSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * A socket to the page's own server that reconnects by itself (websocket first, polling fallback).
 * `token` is asked on every (re)connect for the handshake's `auth: {token}` (an invite token or an
 * API key), so a credential given or changed later is used by the next attempt; without one the
 * handshake carries none.
 */
export function connectSocket(token: () => string | undefined = () => undefined): MoodwireSocket {
  return io({
    transports: ['websocket', 'polling'],
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    timeout: 8000,
    auth: (callback: (auth: HandshakeAuth) => void) => {
      const current = token();
      callback(current ? { token: current } : {});
    },
  });
}

/**
 * The server's reason when it refused the handshake (`connect_error` with `data: {code, message}`);
 * undefined for a network error (server unreachable, transport lost), after which socket.io
 * retries by itself. After a refusal it does not: the page calls `socket.connect()` again.
 */
export function connectRefusal(error: unknown): ConnectErrorData | undefined {
  const data = (error as { data?: Partial<ConnectErrorData> } | undefined)?.data;
  if (!data || typeof data.message !== 'string') return undefined;
  if (data.code !== 'unauthorized' && data.code !== 'forbidden' && data.code !== 'rate_limited') return undefined;
  return { code: data.code, message: data.message };
}
