/**
 * This node's connections to Redis (REDIS_URL) and whether it reaches Redis now.
 *
 * Two clients, with different failure behaviour on purpose:
 * - `client` (session state): no offline queue and a command timeout, so while Redis is away a
 *   session command fails at once (a join is refused `not_ready`, a timeline sample is skipped)
 *   instead of holding up the answer to a live frame;
 * - `adapterClient` (socket.io's redis-streams adapter, see server/cluster/adapter.ts): keeps
 *   ioredis's offline queue, so broadcasts published during a short outage are written to the
 *   stream when Redis comes back (bounded by `maxRetriesPerRequest` reconnection attempts,
 *   about 20 s), and the adapter's readers go on from the last stream offset they read.
 *
 * Both retry for ever (every 0.2 s growing to 2 s) until `close()`; after it no client of this
 * connection reconnects, including the duplicates the adapter makes for its stream readers (they
 * copy these options): a reader blocked in XREAD when Redis goes away would otherwise retry
 * for ~30 s and keep a closed node's process alive. `up` follows the session client: true while
 * it is connected and ready and answers a PING (every second, 2 s timeout: a Redis that hangs
 * without closing the connection counts as down too). The state is logged on every change (and, while Redis cannot be
 * reached, at most every 10 s) and exported as `moodwire_redis_up{node_id}`.
 */
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { redisUp } from '../metrics/metrics.ts';

/** REDIS_URL without its password, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable)';
  }
}

export interface RedisConnectionEvents {
  /** connected (again): `first` is true for the first connection of this process */
  up: [first: boolean];
  down: [];
}

export class RedisConnection extends EventEmitter<RedisConnectionEvents> {
  readonly client: Redis;
  readonly adapterClient: Redis;
  readonly nodeId: string;
  #up = false;
  #everUp = false;
  #lastErrorLog = 0;
  #closing = false;
  readonly #pinger: NodeJS.Timeout;
  readonly #logger: Logger;
  readonly #where: string;

  constructor(url: string, nodeId: string, logger: Logger) {
    super();
    this.nodeId = nodeId;
    this.#logger = logger;
    this.#where = redactRedisUrl(url);
    const retryStrategy = (times: number): number | null => (this.#closing ? null : Math.min(200 * times, 2000));
    const common: RedisOptions = { retryStrategy, connectionName: `moodwire:${nodeId}` };
    this.client = new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    this.adapterClient = new Redis(url, { ...common, maxRetriesPerRequest: 20 });
    redisUp.set({ node_id: nodeId }, 0);
    this.client.on('ready', () => this.#setUp(true));
    this.client.on('close', () => this.#setUp(false));
    this.client.on('error', (error: Error) => this.#onError(error));
    // Its state is the session client's; its errors would only repeat them.
    this.adapterClient.on('error', () => undefined);
    this.#pinger = setInterval(() => {
      if (this.client.status !== 'ready') return;
      this.client.ping().then(
        () => this.#setUp(this.client.status === 'ready'),
        () => this.#setUp(false),
      );
    }, 1000);
    this.#pinger.unref();
  }

  /** Whether the session client is connected and ready now. */
  get up(): boolean {
    return this.#up;
  }

  #setUp(up: boolean): void {
    if (up === this.#up || this.#closing) return;
    this.#up = up;
    redisUp.set({ node_id: this.nodeId }, up ? 1 : 0);
    if (up) {
      const first = !this.#everUp;
      this.#everUp = true;
      this.#logger.info({ redis: this.#where, nodeId: this.nodeId }, first ? 'connected to Redis' : 'Redis is back: cluster features recovered');
      this.emit('up', first);
    } else {
      this.#logger.warn({ redis: this.#where, nodeId: this.nodeId }, 'lost Redis: serving this node\'s sockets only (cross-node sessions and broadcasts degraded); retrying');
      this.emit('down');
    }
  }

  #onError(error: Error): void {
    if (this.#closing) return;
    const now = Date.now();
    if (now - this.#lastErrorLog < 10_000) return;
    this.#lastErrorLog = now;
    this.#logger.warn(
      { redis: this.#where, err: { message: error.message, code: (error as NodeJS.ErrnoException).code } },
      this.#everUp ? 'cannot reach Redis; retrying' : 'cannot reach Redis at start: live sessions are refused until it answers; retrying',
    );
  }

  /** Closes both clients, letting commands already sent finish first when Redis answers. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#pinger);
    const quit = async (client: Redis): Promise<void> => {
      if (client.status === 'ready') await Promise.race([client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      client.disconnect();
    };
    await Promise.all([quit(this.client), quit(this.adapterClient)]);
    redisUp.remove({ node_id: this.nodeId });
  }
}
