import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { io as connect, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, VideoProgressEvent } from '../contract/socket.ts';
import { groupsPan } from './video-support.ts';
import { freePort } from './ports.ts';

const repo = path.resolve(import.meta.dirname, '..');


/** Uploads a video and follows its job over socket.io (`video:subscribe`, `video:progress`) to the end. */
async function followVideoJob(base: string): Promise<VideoProgressEvent[]> {
  const socket = connect(base, { transports: ['websocket'], reconnection: false }) as Socket<ServerToClientEvents, ClientToServerEvents>;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const events: VideoProgressEvent[] = [];
    let id = '';
    const finished = new Promise<void>((resolve) => {
      socket.on('video:progress', (event) => {
        if (event.id !== id) return;
        events.push(event);
        if (event.status === 'done' || event.status === 'failed') resolve();
      });
    });
    const form = new FormData();
    form.append('video', new Blob([await readFile(groupsPan)]), 'groups-pan.mp4');
    const response = await fetch(`${base}/api/v1/videos?fps=1`, { method: 'POST', body: form });
    assert.equal(response.status, 202);
    id = ((await response.json()) as { id: string }).id;
    const ack = await socket.timeout(10_000).emitWithAck('video:subscribe', { id });
    assert.deepEqual(ack, { ok: true, id });
    await Promise.race([finished, new Promise((_, reject) => setTimeout(() => reject(new Error(`no final video:progress; got ${JSON.stringify(events)}`)), 120_000))]);
    return events;
  } finally {
    socket.close();
  }
}

// The real entry point (what `npm start` runs): it becomes ready, serves a video job with pushed
// progress, and exits cleanly on SIGTERM.
test('server/main.ts starts, gets ready, pushes video:progress and shuts down on SIGTERM with exit code 0', { timeout: 240_000 }, async () => {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-main-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: repo,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', MOODWIRE_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 200_000;
    let ready = false;
    while (!ready && Date.now() < deadline) {
      try {
        ready = (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
      } catch {
        // not listening yet
      }
      if (!ready) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(ready, `never ready:\n${output.slice(-2000)}`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);

    const events = await followVideoJob(`http://127.0.0.1:${port}`);
    const last = events.at(-1)!;
    assert.equal(last.status, 'done', JSON.stringify(last));
    assert.equal(last.progress, 1);
    const running = events.filter((e) => e.status === 'running');
    assert.ok(running.length >= 1, `no running progress pushed: ${JSON.stringify(events)}`);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.progress >= events[i - 1]!.progress, 'progress went backwards');
    assert.equal(running[0]!.sampledFps, 1);
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    assert.equal(code, 0, `exit: ${String(code)}\n${output.slice(-2000)}`);
    assert.match(output, /"msg":"stopped"/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
