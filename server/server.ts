/**
 * Builds and starts the whole server for a Config: HTTP + socket.io listen at once (so /healthz
 * answers while models load), inference starts in the background, /readyz turns 200 when it is
 * ready. Used by main.ts and by the tests (port 0).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config, SecurityConfig } from './config.ts';
import express from 'express';
import { createApp, metricsHandler } from './http/app.ts';
import type { InferencePool } from './inference/worker-pool.ts';
import { Authenticator } from './security/authenticator.ts';
import { compileTrust } from './security/client-address.ts';
import { OriginPolicy } from './security/origins.ts';
import { type Inference, startInference, waitForModel } from './inference/engine.ts';
import { attachLiveServer, type LiveServer } from './live/socket-server.ts';
import { videoAnalysisSettings } from './video/analysis-settings.ts';
import { clusterAdapter } from './cluster/adapter.ts';
import { RedisConnection } from './cluster/redis.ts';
import { MemorySessionStore } from './live/memory-sessions.ts';
import { RedisSessionStore } from './live/redis-sessions.ts';
import type { SessionLimits, SessionStore } from './live/session-store.ts';
import { nodeInfo } from './metrics/metrics.ts';
import { createVideoService, type VideoService } from './video/service.ts';

export interface RunningServer {
  httpServer: HttpServer;
  io: LiveServer;
  sessions: SessionStore;
  /** NODE_ID */
  nodeId: string;
  /** With REDIS_URL: `ok` while this node reaches Redis, else `degraded`; undefined without REDIS_URL. */
  cluster(): 'ok' | 'degraded' | undefined;
  /** http://host:port */
  url: string;
  /** http://host:port of the METRICS_PORT listener, when there is one */
  metricsUrl: string | undefined;
  /** resolves when models are loaded and warmed up (rejects if they fail) */
  ready: Promise<Inference>;
  inference(): Inference | undefined;
  /** true once close() began */
  stopping(): boolean;
  /**
   * Shuts down: stops taking frames (new ones, and uploads, are answered `shutting_down`; /readyz
   * says 503 `stopping`), waits until every live frame in analysis is answered (at most
   * `drainBudgetMs(SHUTDOWN_GRACE_MS)`), then closes sockets, video jobs and the workers.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** The access-control objects HTTP and socket.io share, built from SECURITY settings. */
export function securityParts(security: SecurityConfig): { auth: Authenticator; origins: OriginPolicy; trustProxy: (address: string, hop: number) => boolean; security: SecurityConfig } {
  return { auth: new Authenticator(security), origins: new OriginPolicy(security), trustProxy: compileTrust(security.trustProxy), security };
}

/** METRICS_PORT: /metrics alone on its own listener, without credentials (keep it on a private address). */
async function listenMetrics(port: number, host: string, pool: () => InferencePool | undefined, logger: Logger): Promise<HttpServer> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', metricsHandler(pool));
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  logger.info({ host: address.address, port: address.port }, 'metrics listening');
  return server;
}

/**
 * How long close() waits for live frames in analysis: the grace minus a margin (half of it, at
 * most 1 s) for closing sockets, video jobs and workers, so main.ts's forced exit at
 * SHUTDOWN_GRACE_MS is not reached by a drain alone.
 */
export function drainBudgetMs(shutdownGraceMs: number): number {
  return Math.max(0, shutdownGraceMs - Math.min(1000, shutdownGraceMs / 2));
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  let inference: Inference | undefined;
  let stopping = false;
  const abort = new AbortController();

  // Video jobs share the analyzer (video frames have the lowest priority in the pool and batcher)
  // and the tracking settings of live streams.

  const { auth, origins, trustProxy } = securityParts(config.security);
  const limits: SessionLimits = {
    ...config.sessions,
    trackMaxAgeMs: config.tracking.maxAgeMs,
    smoothingTauMs: config.tracking.smoothingTauMs,
    keyframe: config.liveTracking.keyframe,
  };
  // REDIS_URL: sessions in Redis, broadcasts through its streams; the node starts even when Redis
  // does not answer yet (it retries; joins are refused not_ready meanwhile).
  const { nodeId, redisUrl } = config.cluster;
  const redis = redisUrl === undefined ? undefined : new RedisConnection(redisUrl, nodeId, logger);
  // With REDIS_URL: job records in Redis, the queue on BullMQ; NODE_ROLE=api runs no job here.
  const video: VideoService = createVideoService({
    analyzer: () => inference?.analyzer,
    config: { video: config.video, ffmpeg: config.ffmpeg, tracking: config.tracking },
    logger,
    describeAnalysis: () => videoAnalysisSettings(config, inference?.pool.modelVersion ?? 'unknown'),
    ...(redis && redisUrl
      ? {
          cluster: {
            redis: redis.client,
            redisUrl,
            nodeId,
            runJobs: config.cluster.role !== 'api',
            lockMs: config.cluster.videoJobLockMs,
            isUp: () => redis.up,
          },
        }
      : {}),
  });
  const sessions: SessionStore = redis
    ? new RedisSessionStore({ limits, connection: redis, heartbeatMs: config.cluster.heartbeatMs, logger })
    : new MemorySessionStore(limits);
  const cluster = (): 'ok' | 'degraded' | undefined => (redis === undefined ? undefined : redis.up ? 'ok' : 'degraded');
  nodeInfo.set({ node_id: nodeId, cluster: redis ? 'redis' : 'off' }, 1);
  if (redis) logger.info({ nodeId, role: config.cluster.role }, 'cluster mode: sessions, broadcasts and video jobs shared through Redis');
  if (!config.security.enabled) logger.warn('MOODWIRE_AUTH=off: no credential is checked; anyone who reaches this port reads and changes everything');
  else if (!auth.keys.configured) logger.info('no API keys configured (MOODWIRE_API_KEYS): serving clients on this machine only');

  const app = createApp({
    analyzer: () => inference?.analyzer,
    pool: () => inference?.pool,
    stopping: () => stopping,
    maxImageBytes: config.limits.maxImageBytes,
    clientDir: config.clientDir,
    logger,
    videoRouter: video.router,
    auth,
    origins,
    security: config.security,
    trustProxy,
    metricsOnMainPort: config.metrics.port === undefined,
    cluster: () => {
      const state = cluster();
      return state === undefined ? undefined : { state, nodeId };
    },
  });
  const httpServer = createServer(app);
  const { io, drain } = attachLiveServer(httpServer, {
    analyzer: () => inference?.analyzer,
    limits,
    sessions,
    maxImageBytes: config.limits.maxImageBytes,
    logger,
    auth,
    origins,
    trustProxy,
    clientLimits: config.clientLimits,
    canReadVideo: (id, caller) => video.canRead(id, caller.owner),
  });
  if (redis) io.adapter(clusterAdapter(redis.adapterClient));
  const metricsServer = config.metrics.port === undefined ? undefined : await listenMetrics(config.metrics.port, config.metrics.host, () => inference?.pool, logger);

  video.events.on('progress', (event) => {
    io.to(`video:${event.id}`).emit('video:progress', { ...event });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  logger.info({ url }, 'listening');

  const ready = (async () => {
    await waitForModel(config.modelDir, logger, config.modelPollMs, abort.signal);
    const started = await startInference(config, logger);
    if (abort.signal.aborted) {
      await started.close();
      throw new Error('the server closed while models were loading');
    }
    inference = started;
    // Opened after the models: resumed jobs need the analyzer.
    await video.start();
    return started;
  })();
  // The models, then the video service (its data and upload folders must be writable).
  ready.catch((error: unknown) => logger.error({ err: error }, 'failed to start the models or the video service'));

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    stopping = true;
    abort.abort();
    const drained = await drain(performance.now() + drainBudgetMs(config.shutdownGraceMs));
    const report = { inFlight: drained.inFlight, refused: drained.refused, drainMs: Math.round(drained.ms) };
    if (drained.answered) logger.info(report, 'live frames in analysis answered');
    else logger.warn(report, 'live frames still in analysis at the drain deadline are not answered');
    await new Promise<void>((resolve) => {
      io.close(() => resolve());
    });
    httpServer.closeAllConnections();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // Waits for the leaves the closed sockets started, then forgets this node's part.
    await sessions.close().catch((error: unknown) => logger.error({ err: error }, 'session store failed to close'));
    // Before Redis: with REDIS_URL its running jobs go back to the queue through Redis.
    await video.close().catch((error: unknown) => logger.error({ err: error }, 'video service failed to close'));
    await redis?.close();
    nodeInfo.remove({ node_id: nodeId, cluster: redis ? 'redis' : 'off' });
    await inference?.close();
    inference = undefined;
  };

  return {
    httpServer,
    io,
    sessions,
    nodeId,
    cluster,
    url,
    metricsUrl: metricsServer ? `http://${config.metrics.host}:${(metricsServer.address() as AddressInfo).port}` : undefined,
    ready,
    inference: () => inference,
    stopping: () => stopping,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
