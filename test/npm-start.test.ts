/**
 * `npm start` as a container runs it: SIGTERM to the npm process (PID 1's case, where nothing
 * else forwards signals) must stop the server process too. npm runs the script through `sh -c`;
 * the script execs node, so the server is npm's own child and gets the signal npm forwards.
 * Without that, dash stays between them, npm and sh end, and node keeps running orphaned.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const repo = path.resolve(import.meta.dirname, '..');

/** Every descendant of pid (children first level, then theirs), with its command line. */
function descendants(pid: number): { pid: number; args: string }[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there is none
  }
  const children = out
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [first, ...rest] = line.split(/\s+/);
      return { pid: Number(first), args: rest.join(' ') };
    });
  return children.flatMap((child) => [child, ...descendants(child.pid)]);
}

/** Alive and not a zombie (a zombie has ended; only its parent has not collected it). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('SIGTERM to the `npm start` process stops the server process as well', { timeout: 240_000 }, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-npm-start-'));
  const npm = spawn('npm', ['start'], {
    cwd: repo,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', MOODWIRE_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let tree: { pid: number; args: string }[] = [];
  try {
    // prestart builds the client first; then the server logs 'listening'.
    const deadline = Date.now() + 180_000;
    while (!/"msg":"listening"/.test(output) && npm.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.match(output, /"msg":"listening"/, `never listening:\n${output.slice(-2000)}`);
    tree = descendants(npm.pid!);
    const server = tree.find((p) => p.args.includes('server/main.ts') && p.args.startsWith('node'));
    assert.ok(server, `no node server/main.ts under npm: ${JSON.stringify(tree)}`);

    const sentAt = performance.now();
    npm.kill('SIGTERM');
    const end = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
    assert.notEqual(end, 'timeout', `npm still running 15 s after SIGTERM\n${output.slice(-2000)}`);
    // Everything npm started is gone within the same bound (the server handles SIGTERM itself).
    let left = tree;
    while (performance.now() - sentAt < 15_000) {
      left = (await Promise.all(tree.map(async (p) => ((await alive(p.pid)) ? [p] : [])))).flat();
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], `still running after SIGTERM: ${JSON.stringify(left)}`);
    const { code, signal } = end as { code: number | null; signal: NodeJS.Signals | null };
    assert.equal(code, 0, `npm exit: code ${String(code)}, signal ${String(signal)}\n${output.slice(-2000)}`);
    assert.match(output, /"signal":"SIGTERM","msg":"shutting down"/);
    assert.match(output, /"msg":"stopped"/);
    process.stderr.write(`# npm start stopped ${Math.round(performance.now() - sentAt)} ms after SIGTERM\n`);
  } finally {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    for (const p of tree) if (await alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
