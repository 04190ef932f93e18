/**
 * socket.io room broadcasts across nodes: `@socket.io/redis-streams-adapter`.
 *
 * Why the streams adapter and not the pub/sub one (`@socket.io/redis-adapter`): with pub/sub a
 * message published while a node is disconnected from Redis is simply never delivered to it.
 * With streams every broadcast is appended to a Redis stream (XADD, capped at `maxLen` entries)
 * and each node reads the stream (XREAD) from the last offset it read, so after a short outage
 * (of Redis, or of one node's connection to it) each node reads what it missed; what a node
 * published during the outage waits in its client's offline queue (about 20 s, see redis.ts).
 *
 * One change to the adapter's behaviour: the stock ClusterAdapter awaits the XADD before
 * delivering a broadcast to this node's own sockets, so while Redis is down the node's local
 * `emotions` would wait for Redis too. Here the publish is not awaited (the offset it returns is
 * used only by connection state recovery, which Moodwire does not enable): this node's sockets
 * get their broadcast at once, and the XADD follows in order on the same connection.
 */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';

type AdapterFactory = ReturnType<typeof createAdapter>;

export function clusterAdapter(client: Redis): AdapterFactory {
  const factory = createAdapter(client, { streamName: 'moodwire:socket.io', blockTimeInMs: 1000, onlyPlaintext: true });
  // socket.io calls it with `new`: a function, not an arrow (an object returned from it is the instance).
  return function clusterAdapterFor(nsp: Parameters<AdapterFactory>[0]) {
    const adapter = factory(nsp);
    // doPublish is protected in the adapter's types; replaced on this instance only.
    const open = adapter as unknown as { doPublish(message: unknown): Promise<string> };
    const publish = open.doPublish.bind(adapter);
    open.doPublish = (message) => {
      publish(message).catch(() => undefined);
      return Promise.resolve('');
    };
    return adapter;
  } as AdapterFactory;
}
