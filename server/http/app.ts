/**
 * The express app: security headers and protected mode on everything; health and readiness
 * (public: they hold no data), Prometheus metrics, and under /api/v1 (Origin rule, then a
 * credential) invites, single-image analysis and the video API; the built browser client at `/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../../contract/errors.ts';
import type { InferencePool } from '../inference/worker-pool.ts';
import { liveTensors, registry } from '../metrics/metrics.ts';
import type { FrameAnalyzer } from '../pipeline/types.ts';
import { analyzeRouter } from './analyze-route.ts';
import type { SecurityConfig } from '../config.ts';
import type { Authenticator } from '../security/authenticator.ts';
import type { OriginPolicy } from '../security/origins.ts';
import { getAbsoluteFSPath } from 'swagger-ui-dist';
import { repoRoot } from '../config.ts';
import { errorHandler } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { invitesRouter } from './invites-route.ts';
import { apiDocsStyles, apiOrigins, protectedMode, requireCaller, securityHeaders } from './security.ts';

export interface AppDeps {
  analyzer: () => FrameAnalyzer | undefined;
  pool: () => InferencePool | undefined;
  /** true once shutdown began: /readyz says 503 stopping, uploads are refused shutting_down (unset: never) */
  stopping?: () => boolean;
  maxImageBytes: number;
  clientDir: string;
  logger: Logger;
  /** the video service's router, mounted at /api/v1/videos */
  videoRouter?: Router;
  auth: Authenticator;
  origins: OriginPolicy;
  security: Pick<SecurityConfig, 'inviteDefaultTtlSec' | 'inviteMaxTtlSec' | 'publicUrl'>;
  /** TRUST_PROXY, compiled: decides `req.ip` */
  trustProxy: (address: string, hop: number) => boolean;
  /** false when METRICS_PORT serves /metrics on its own listener */
  metricsOnMainPort: boolean;
  /**
   * With REDIS_URL: whether this node reaches Redis. `degraded` still answers /readyz 200: the
   * node goes on serving its own sockets, and a load balancer should not drop every node at
   * once because Redis blinked.
   */
  cluster?: () => { state: 'ok' | 'degraded'; nodeId: string } | undefined;
}

/** GET /metrics: every registered metric, with the workers' live tensor count refreshed first. */
export function metricsHandler(pool: () => InferencePool | undefined): RequestHandler {
  return async (_req, res) => {
    const current = pool();
    if (current) {
      // Tensors live in the workers; their sum is the number that grows on a leak.
      const memory = await current.memory().catch(() => []);
      liveTensors.set(memory.reduce((n, m) => n + m.numTensors, 0));
    }
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  };
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const SWAGGER_INITIALIZER = `window.onload = () => {
  window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#swagger-ui', deepLinking: true, presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });
};
`;

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.use(securityHeaders());
  app.use(protectedMode(deps.auth));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    if (deps.stopping?.() === true) {
      res.status(503).json({ status: 'stopping' });
      return;
    }
    const pool = deps.pool();
    if (!pool || !deps.analyzer()) {
      res.status(503).json({ status: 'starting' });
      return;
    }
    const cluster = deps.cluster?.();
    res.json({
      status: 'ready',
      backend: pool.backend,
      workers: pool.size,
      modelVersion: pool.modelVersion,
      ...(cluster ? { cluster: cluster.state, nodeId: cluster.nodeId } : {}),
    });
  });

  // With API keys, Prometheus scrapes with `authorization: {credentials: <key>}`, or uses METRICS_PORT.
  if (deps.metricsOnMainPort) app.get('/metrics', requireCaller(deps.auth, { allowInvite: false }), metricsHandler(deps.pool));

  app.use('/api/v1/analyze', (_req, _res, next) => {
    next(deps.stopping?.() === true ? new AppError('shutting_down', 'the server is shutting down: no new images') : undefined);
  });
  app.use('/api', ...apiOrigins(deps.origins));
  // The API's description holds no data: no credential needed.
  const openApi = openApiDocument(PACKAGE_VERSION);
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use('/api/v1/sessions', invitesRouter(deps.auth, deps.security));
  app.use('/api/v1', requireCaller(deps.auth, { allowInvite: false }));
  app.use('/api/v1/analyze', analyzeRouter({ analyzer: deps.analyzer, maxImageBytes: deps.maxImageBytes }));
  if (deps.videoRouter) app.use('/api/v1/videos', deps.videoRouter);
  app.use('/api', (req, _res, next) => next(new AppError('not_found', `no route ${req.method} ${req.originalUrl}`)));

  // Swagger UI (npm swagger-ui-dist, served from node_modules) on the document above; our own
  // initializer replaces the package's demo one, which points at a remote petstore.
  app.get('/api-docs/swagger-initializer.js', (_req, res) => {
    res.type('application/javascript').send(SWAGGER_INITIALIZER);
  });
  app.use('/api-docs', apiDocsStyles(), express.static(getAbsoluteFSPath(), { index: 'index.html' }));

  // Checked per request, so a client built after the server started is served without a restart.
  app.use(express.static(deps.clientDir));
  app.get('/', (_req, res, next) => {
    if (existsSync(path.join(deps.clientDir, 'index.html'))) return next();
    res.type('text/plain').send('Moodwire server is running. The browser client is not built: run `npm run build:client`.\n');
  });

  app.use(errorHandler(deps.logger));
  return app;
}
