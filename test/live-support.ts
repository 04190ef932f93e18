/** Shared helpers for the live-server tests: a real server on port 0 and real socket.io clients. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { io as connect, type Socket } from 'socket.io-client';
import { type Config, loadConfig, repoRoot } from '../server/config.ts';
import type { Ack, ClientToServerEvents, ServerToClientEvents, Box } from '../contract/socket.ts';
// The tracker's own overlap measure, so tests and tracker agree.
import { iou } from '../contract/geometry.ts';
import { type RunningServer, startServer } from '../server/server.ts';
import { ffmpegEnv } from './video-support.ts';

export const mediaDir = path.resolve(repoRoot, '../shared/media');
/** The trained model by default; TEST_MODEL_DIR points elsewhere (e.g. while the first model trains). */
export const testModelDir = process.env.TEST_MODEL_DIR ?? path.join(repoRoot, 'models/emotion');

export const referenceFaces = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/media-faces.json'), 'utf8')) as {
  photos: Record<string, Box[]>;
};
export const photoNames = Object.keys(referenceFaces.photos);

export function testConfig(env: Record<string, string> = {}): Config {
  // Tests send each frame as soon as the last is answered; on a fast machine tracked frames come
  // back in well under 25 ms, past the default 40 events a second. The limit has its own test
  // (security-limits), which sets it.
  return loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    MODEL_DIR: testModelDir,
    WORKERS: '2',
    LOG_LEVEL: 'silent',
    SOCKET_EVENTS_PER_SECOND: '1000',
    ...ffmpegEnv(),
    ...env,
  });
}

/** A server on an ephemeral port; its video data (sqlite, uploads) lives in a fresh temp folder. */
export async function startTestServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-data-'));
  const config = testConfig({ MOODWIRE_DATA_DIR: dataDir, ...env });
  const server = await startServer(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const close = server.close.bind(server);
  server.close = async () => {
    await close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return server;
}

export type TestClient = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ConnectOptions {
  /** the handshake's auth (an invite token or an API key) */
  token?: string;
  /** headers of the handshake request (Origin, X-Forwarded-For) */
  headers?: Record<string, string>;
  transport?: 'websocket' | 'polling';
  /** the local address to connect from (another loopback address stands for another client machine) */
  localAddress?: string;
}

/** A connected client; rejects with the connect_error (its `data` holds a refusal's code) if refused. */
export async function connectClient(url: string, options: ConnectOptions = {}): Promise<TestClient> {
  const socket: TestClient = connect(url, {
    transports: [options.transport ?? 'websocket'],
    forceNew: true,
    reconnection: false,
    ...(options.token ? { auth: { token: options.token } } : {}),
    ...(options.headers ? { extraHeaders: options.headers } : {}),
    // Passed through to Node's http/ws request options (not in socket.io-client's own types).
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  } as Parameters<typeof connect>[1]);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
  return socket;
}

/** Emits an acknowledged event with raw (possibly invalid) arguments and resolves with the ack. */
export function request<T = unknown>(socket: TestClient, event: string, ...args: unknown[]): Promise<Ack<T>> {
  return (socket as unknown as Socket).timeout(60_000).emitWithAck(event, ...args) as Promise<Ack<T>>;
}


/** Faces matched one-to-one to reference boxes (IoU >= 0.3): found = matched, invented = unmatched detections. */
export function matchFaces(found: Box[], reference: Box[]): { matched: number; invented: number } {
  const used = new Set<number>();
  let matched = 0;
  for (const box of found) {
    let best = -1;
    let bestIou = 0.3;
    reference.forEach((ref, i) => {
      const overlap = iou(box, ref);
      if (!used.has(i) && overlap >= bestIou) {
        best = i;
        bestIou = overlap;
      }
    });
    if (best >= 0) {
      used.add(best);
      matched += 1;
    }
  }
  return { matched, invented: found.length - matched };
}

export function readPhoto(name: string): Buffer {
  return readFileSync(path.join(mediaDir, name));
}
