/**
 * Readiness and hot reload on a real server: it starts with an empty MODEL_DIR (/readyz 503,
 * /healthz 200), becomes ready when a model appears, swaps to a rewritten model while a client
 * streams frames (no frame fails), and keeps the old model when the new files are broken.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FrameResult } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { connectClient, readPhoto, request, startTestServer, testModelDir, type TestClient } from './live-support.ts';

/** Writes a file the way the trainer does: a temporary name, then rename. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

async function readyz(url: string): Promise<{ status: number; body: { status: string; modelVersion?: string } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; modelVersion?: string } };
}

describe('readiness and model hot reload', { timeout: 300_000 }, () => {
  let dir: string;
  let server: RunningServer;
  let socket: TestClient | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-model-'));
    server = await startTestServer({ MODEL_DIR: dir, MODEL_POLL_MS: '200', WORKERS: '2' });
  });

  after(async () => {
    socket?.disconnect();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is alive but not ready without a model, and ready once one appears', async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const starting = await readyz(server.url);
    assert.equal(starting.status, 503);
    assert.equal(starting.body.status, 'starting');
    await cp(testModelDir, dir, { recursive: true });
    await server.ready;
    const ready = await readyz(server.url);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
  });

  it('picks up a rewritten model without a restart and without failing frames in flight', async () => {
    socket = await connectClient(server.url);
    assert.equal((await request(socket, 'session:join', { sessionId: 'reload' })).ok, true);
    const watcher = server.inference()!.watcher;
    const oldVersion = (await readyz(server.url)).body.modelVersion;

    const card = JSON.parse(await readFile(path.join(dir, 'card.json'), 'utf8')) as { version: string };
    const newVersion = `${card.version}-reloaded`;
    const reloaded = once(watcher, 'reloaded', { signal: AbortSignal.timeout(60_000) });

    // Stream frames while the model changes underneath; every one must succeed.
    const image = readPhoto('group1.jpg');
    let streaming = true;
    const results: string[] = [];
    const stream = (async () => {
      for (let seq = 1; streaming || seq < 4; seq++) {
        const ack = await request<FrameResult>(socket!, 'frame', { seq, image });
        results.push(ack.ok ? 'ok' : ack.error.code);
      }
    })();
    await writeAtomically(path.join(dir, 'model.json'), await readFile(path.join(dir, 'model.json'), 'utf8'));
    await writeAtomically(path.join(dir, 'card.json'), JSON.stringify({ ...card, version: newVersion }));
    const [version] = (await reloaded) as [string];
    streaming = false;
    await stream;

    assert.ok(version.endsWith(`@${newVersion}`), version);
    assert.notEqual(version, oldVersion);
    assert.equal((await readyz(server.url)).body.modelVersion, version);
    assert.ok(results.length >= 3);
    assert.deepEqual(results.filter((r) => r !== 'ok'), []);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.ok(metrics.includes(`model_version="${version}"`));
  });

  it('keeps the old model when the new files are broken', async () => {
    const watcher = server.inference()!.watcher;
    const before = (await readyz(server.url)).body.modelVersion;
    const tensorsBefore = (await server.inference()!.pool.memory()).map((m) => m.numTensors);
    const failed = once(watcher, 'reload-failed', { signal: AbortSignal.timeout(60_000) });
    await writeAtomically(path.join(dir, 'model.json'), '{"modelTopology": {"broken": true}, "weightsManifest": []}');
    await failed;
    assert.equal((await readyz(server.url)).body.modelVersion, before);
    // Every worker still holds exactly its old model: no half-loaded candidate is left behind.
    assert.deepEqual((await server.inference()!.pool.memory()).map((m) => m.numTensors), tensorsBefore);
    const ack = await request<FrameResult>(socket!, 'frame', { seq: 100, image: readPhoto('group4.jpg') });
    assert.equal(ack.ok, true, JSON.stringify(ack));
  });
});
