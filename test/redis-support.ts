/** A real redis-server for tests: on a free port, no persistence; kill -9 and restart on the same port. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';


export class TestRedis {
  readonly port: number;
  readonly #dir: string;
  #process: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-redis-'));
  }

  static async start(): Promise<TestRedis> {
    const redis = await TestRedis.reserve();
    await redis.restart();
    return redis;
  }

  /** A free port for a redis-server not started yet (restart() starts it). */
  static async reserve(): Promise<TestRedis> {
    return new TestRedis(await freePort());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server on this.port (again) and waits until it answers PING. */
  async restart(): Promise<void> {
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.#dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#process = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${this.port}`);
        await sleep(50);
      }
    }
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs with its connections open. */
  pause(paused: boolean): void {
    this.#process?.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  /** SIGKILL: no goodbye to its clients; with --save '' its data is gone. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null || (child.signalCode !== null && child.signalCode !== 'SIGSTOP' && child.signalCode !== 'SIGCONT')) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** A client of its own (tests' checks). */
  client(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    return client;
  }
}
