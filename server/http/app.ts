/**
 * The express app: health and readiness, Prometheus metrics, single-image analysis, the video
 * API (mounted when the video service is given) and the built browser client at `/`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Express, type Router } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import type { InferencePool } from '../inference/worker-pool.ts';
import { liveTensors, registry } from '../metrics/metrics.ts';
import type { FrameAnalyzer } from '../pipeline/types.ts';
import type { Caller } from '../security/caller.ts';
import { analyzeRouter } from './analyze-route.ts';
import { errorHandler } from './errors.ts';

export interface AppDeps {
  analyzer: () => FrameAnalyzer | undefined;
  pool: () => InferencePool | undefined;
  maxImageBytes: number;
  clientDir: string;
  logger: Logger;
  /** the video service's router, mounted at /api/v1/videos */
  videoRouter?: Router;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const pool = deps.pool();
    if (!pool || !deps.analyzer()) {
      res.status(503).json({ status: 'starting' });
      return;
    }
    res.json({ status: 'ready', backend: pool.backend, workers: pool.size, modelVersion: pool.modelVersion });
  });

  app.get('/metrics', async (_req, res) => {
    const pool = deps.pool();
    if (pool) {
      // Tensors live in the workers; their sum is the number that grows on a leak.
      const memory = await pool.memory().catch(() => []);
      liveTensors.set(memory.reduce((n, m) => n + m.numTensors, 0));
    }
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });

  // until api-keys.ts lands: every /api/v1 request gets a caller (routes read it with callerOf);
  // only where none was set, so the API-key middleware's caller wins. Remove at merge.
  app.use('/api/v1', (req, res, next) => {
    (res.locals as { caller?: Caller }).caller ??= { kind: 'local', owner: 'local', address: req.ip ?? '' };
    next();
  });
  app.use('/api/v1/analyze', analyzeRouter({ analyzer: deps.analyzer, maxImageBytes: deps.maxImageBytes }));
  if (deps.videoRouter) app.use('/api/v1/videos', deps.videoRouter);
  app.use('/api', (req, _res, next) => next(new AppError('not_found', `no route ${req.method} ${req.originalUrl}`)));

  // Checked per request, so a client built after the server started is served without a restart.
  app.use(express.static(deps.clientDir));
  app.get('/', (_req, res, next) => {
    if (existsSync(path.join(deps.clientDir, 'index.html'))) return next();
    res.type('text/plain').send('Moodwire server is running. The browser client is not built: run `npm run build:client`.\n');
  });

  app.use(errorHandler(deps.logger));
  return app;
}
