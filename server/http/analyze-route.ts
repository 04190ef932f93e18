/**
 * POST /api/v1/analyze: one image in the body (Content-Type image/jpeg|png|webp), faces out in
 * the same shape as live frames (trackIds 1..n; `smoothed` equals `emotions` for a single image).
 * The answer's type is AnalyzeResult in contract/http.ts.
 */
import express, { type Router } from 'express';
import { AppError } from '../../contract/errors.ts';
import type { AnalyzeResult } from '../../contract/http.ts';
import { frameLatencySeconds, framesReceived } from '../metrics/metrics.ts';
import { FaceTracker } from '../pipeline/track.ts';
import type { FrameAnalyzer } from '../pipeline/types.ts';

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);

export function analyzeRouter(deps: { analyzer: () => FrameAnalyzer | undefined; maxImageBytes: number }): Router {
  const router = express.Router();
  const readBody = express.raw({ type: () => true, limit: deps.maxImageBytes });

  router.post(
    '/',
    (req, _res, next) => {
      // Every image that arrives, before anything may refuse it (media type, size, not ready).
      framesReceived.inc({ source: 'image' });
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (!IMAGE_TYPES.has(type)) {
        next(new AppError('unsupported_media_type', `Content-Type must be image/jpeg, image/png or image/webp, got ${type || 'none'}`));
        return;
      }
      next();
    },
    readBody,
    async (req, res) => {
      const started = performance.now();
      const analyzer = deps.analyzer();
      if (!analyzer) throw new AppError('not_ready', 'the models are still loading; try again shortly');
      const body: unknown = req.body;
      if (!(body instanceof Uint8Array) || body.byteLength === 0) throw new AppError('undecodable_image', 'the request body is empty');
      const analysis = await analyzer.analyzeEncoded(body, 'image');
      const faces = new FaceTracker().update(analysis.faces, 0);
      frameLatencySeconds.observe({ source: 'image' }, (performance.now() - started) / 1000);
      const answer: AnalyzeResult = { width: analysis.width, height: analysis.height, faces, timings: analysis.timings };
      res.json(answer);
    },
  );
  return router;
}
