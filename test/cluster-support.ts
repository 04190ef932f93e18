/**
 * Node processes for the cluster tests: `server/main.ts` spawned as `npm start` runs it (so it can
 * be killed with SIGKILL or stopped with SIGTERM), its output kept; and the video API calls those
 * tests make against them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VideoJobView } from '../contract/http.ts';
import { repoRoot } from '../server/config.ts';
import { testModelDir } from './live-support.ts';
import { freePort } from './ports.ts';
import { ffmpegEnv } from './video-support.ts';

export interface NodeProcess {
  id: string;
  url: string;
  child: ChildProcess;
  /** stdout and stderr so far (pino JSON lines) */
  output: string;
  dataDir: string;
}

/** Spawns a node (NODE_ID `id`, one worker thread, LOG_LEVEL info) on a free port with `env` on top; waitReady() waits for it. */
export async function spawnNode(id: string, env: Record<string, string>): Promise<NodeProcess> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `moodwire-${id}-`));
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...ffmpegEnv(), PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', MODEL_DIR: testModelDir, MOODWIRE_DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ID: id, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: NodeProcess = { id, url: `http://127.0.0.1:${port}`, child, output: '', dataDir };
  child.stdout!.on('data', (chunk: Buffer) => (node.output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (node.output += chunk.toString()));
  return node;
}

/** Until /readyz answers and the video service has started (models loaded), or the deadline. */
export async function waitReady(node: NodeProcess, deadlineMs: number): Promise<void> {
  for (;;) {
    const ok = await fetch(`${node.url}/readyz`).then((r) => r.ok, () => false);
    if (ok && /video service starting/.test(node.output)) return;
    if (node.child.exitCode !== null || Date.now() > deadlineMs) throw new Error(`node ${node.id} did not get ready:\n${node.output}`);
    await sleep(300);
  }
}

export function isAlive(node: NodeProcess): boolean {
  return node.child.exitCode === null && node.child.signalCode === null;
}

/** Sends `signal` and resolves once the process has exited. */
export async function stopNode(node: NodeProcess, signal: NodeJS.Signals): Promise<void> {
  if (!isAlive(node)) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill(signal);
  await exited;
}

/** POST /api/v1/videos with `file` at `fps`: the accepted job's id (asserts 202). */
export async function upload(url: string, file: string, fps: number): Promise<string> {
  const form = new FormData();
  form.append('video', new Blob([fs.readFileSync(file)]), path.basename(file));
  const res = await fetch(`${url}/api/v1/videos?fps=${fps}`, { method: 'POST', body: form });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** GET /api/v1/videos/:id (asserts 200). */
export async function view(url: string, id: string): Promise<VideoJobView> {
  const res = await fetch(`${url}/api/v1/videos/${id}`);
  assert.equal(res.status, 200, `GET ${id} on ${url}`);
  return (await res.json()) as VideoJobView;
}

/** Polls `probe` every `stepMs` until it answers something other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}
