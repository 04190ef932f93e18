/**
 * Starting the real entry point (server/main.ts, what `npm start` runs) as a child process
 * (issue 21, item 11): a bad setting or a port in use ends it with one readable line on stderr and
 * status 1, without a stack trace; once listening it logs the URL to open in a browser.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const repo = path.resolve(import.meta.dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs server/main.ts with `env` on top of this environment until it exits (or `until` says so, then SIGTERM). */
function runMain(env: Record<string, string>, until?: (stdout: string) => boolean, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: repo,
      env: { ...process.env, WORKERS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (until?.(stdout) && child.exitCode === null) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function listenOnFreePort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

/** One line naming what is wrong, and none of a stack trace's `    at ...` frames. */
function assertOneReadableLine(run: Run, ...mentions: RegExp[]): void {
  assert.equal(run.code, 1, `exit status\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `a stack trace:\n${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `more than one line on stderr:\n${run.stderr}`);
  for (const mention of mentions) assert.match(lines[0]!, mention);
}

describe('server/main.ts start-up', { timeout: 180_000 }, () => {
  it('PORT=abc: one line naming PORT, status 1, no stack trace', async () => {
    const run = await runMain({ PORT: 'abc' });
    assertOneReadableLine(run, /^moodwire: invalid configuration: /, /PORT="abc"/);
    assert.equal(run.stdout, '', 'nothing starts');
  });

  it('several bad settings: all named on the one line', async () => {
    const run = await runMain({ PORT: 'abc', VIDEO_SAMPLE_FPS: '0', LOG_LEVEL: 'loud' });
    assertOneReadableLine(run, /invalid configuration/, /PORT="abc"/, /VIDEO_SAMPLE_FPS="0"/, /LOG_LEVEL="loud"/);
  });

  it('a port in use: one line naming the address, status 1, no stack trace', async () => {
    const { server, port } = await listenOnFreePort();
    try {
      const run = await runMain({ PORT: String(port), HOST: '127.0.0.1' });
      assertOneReadableLine(run, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`));
    } finally {
      server.close();
    }
  });

  it('a public HOST without credentials: one line naming MOODWIRE_API_KEYS and MOODWIRE_AUTH=off, status 1', async () => {
    const run = await runMain({ HOST: '0.0.0.0' });
    assertOneReadableLine(run, /HOST=0\.0\.0\.0 serves other machines/, /MOODWIRE_API_KEYS/, /MOODWIRE_AUTH=off/);
  });

  it('logs the URL to open in a browser once listening (127.0.0.1 when listening on 0.0.0.0)', async () => {
    const { server, port } = await listenOnFreePort();
    server.close(); // a port that was free a moment ago
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-start-'));
    try {
      const line = `open http://127.0.0.1:${port}/ in a browser`;
      // Listening on every interface needs credentials (protected mode otherwise).
      const run = await runMain({ PORT: String(port), HOST: '0.0.0.0', MOODWIRE_API_KEYS: 'start-test-key-0000000', MOODWIRE_DATA_DIR: dataDir, LOG_LEVEL: 'info' }, (stdout) => stdout.includes(line));
      assert.ok(run.stdout.includes(`"msg":"${line}"`), `no "${line}" log line:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
