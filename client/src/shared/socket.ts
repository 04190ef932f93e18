import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../../../contract/socket.ts';

export type MoodwireSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A socket to the page's own server that reconnects by itself (websocket first, polling fallback). */
export function connectSocket(): MoodwireSocket {
  return io({
    transports: ['websocket', 'polling'],
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    timeout: 8000,
  });
}
