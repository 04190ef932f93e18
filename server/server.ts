/**
 * Builds and starts the whole server for a Config: HTTP + socket.io listen at once (so /healthz
 * answers while models load), inference starts in the background, /readyz turns 200 when it is
 * ready. Used by main.ts and by the tests (port 0).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { createApp } from './http/app.ts';
import { type Inference, startInference, waitForModel } from './inference/engine.ts';
import { attachLiveServer, type LiveServer } from './live/socket-server.ts';
import type { SessionRegistry } from './live/sessions.ts';
import { createVideoService, type VideoService } from './video/service.ts';

export interface RunningServer {
  httpServer: HttpServer;
  io: LiveServer;
  sessions: SessionRegistry;
  /** http://host:port */
  url: string;
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
  const video: VideoService = createVideoService({
    analyzer: () => inference?.analyzer,
    config: { video: config.video, ffmpeg: config.ffmpeg, tracking: config.tracking },
    logger,
  });

  const app = createApp({
    analyzer: () => inference?.analyzer,
    pool: () => inference?.pool,
    stopping: () => stopping,
    maxImageBytes: config.limits.maxImageBytes,
    clientDir: config.clientDir,
    logger,
    videoRouter: video.router,
  });
  const httpServer = createServer(app);
  const { io, sessions, drain } = attachLiveServer(httpServer, {
    analyzer: () => inference?.analyzer,
    limits: {
      ...config.sessions,
      trackMaxAgeMs: config.tracking.maxAgeMs,
      smoothingTauMs: config.tracking.smoothingTauMs,
      keyframe: config.liveTracking.keyframe,
    },
    maxImageBytes: config.limits.maxImageBytes,
    logger,
  });

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
  ready.catch((error: unknown) => logger.error({ err: error }, 'inference failed to start'));

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
    await video.close().catch((error: unknown) => logger.error({ err: error }, 'video service failed to close'));
    await inference?.close();
    inference = undefined;
  };

  return {
    httpServer,
    io,
    sessions,
    url,
    ready,
    inference: () => inference,
    stopping: () => stopping,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
