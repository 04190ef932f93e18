/**
 * The HTTP side of access control: security headers on every answer, protected mode (no API keys:
 * loopback clients only), the Origin rule and CORS for the API, and the credential check that
 * sets `res.locals.caller` (server/security/caller.ts) for every /api/v1 route.
 */
import cors from 'cors';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { AppError } from '../../contract/errors.ts';
import { bearerCredential } from '../security/api-keys.ts';
import { type Authenticator, PROTECTED_MODE_MESSAGE } from '../security/authenticator.ts';
import type { OriginPolicy } from '../security/origins.ts';

/**
 * helmet's defaults (nosniff, referrer policy, frame-ancestors via CSP and X-Frame-Options, ...)
 * with a CSP the pages work under: scripts and styles from the server only, camera frames and
 * chart snapshots as blob:/data: images, sockets to the same origin. No upgrade-insecure-requests:
 * the server speaks plain HTTP unless a proxy in front adds TLS.
 */
const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  mediaSrc: ["'self'", 'blob:', 'mediastream:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: false,
  });
}

/**
 * The CSP of the Swagger UI page: as everywhere, but inline styles allowed (Swagger UI injects a
 * <style> element; its scripts still come only from the server).
 */
export function apiDocsStyles(): RequestHandler {
  return helmet.contentSecurityPolicy({ useDefaults: false, directives: { ...CSP_DIRECTIVES, styleSrc: ["'self'", "'unsafe-inline'"] } });
}

/** Protected mode: without API keys only this machine's clients are served (pages included). */
export function protectedMode(auth: Authenticator): RequestHandler {
  return (req, res, next) => {
    if (auth.admits(req.ip ?? '')) return next();
    next(new AppError('forbidden', PROTECTED_MODE_MESSAGE));
  };
}

/**
 * The API answers a browser page of another site only when its origin is allowed: a foreign
 * Origin is refused outright (a multipart upload is a "simple" request that CORS alone would let
 * through), allowed ones get CORS headers (preflights included).
 */
export function apiOrigins(policy: OriginPolicy): RequestHandler[] {
  const refuseForeign: RequestHandler = (req, _res, next) => {
    if (policy.allows(req)) return next();
    next(new AppError('forbidden', `requests from the origin ${req.headers.origin} are not allowed (CORS_ORIGINS)`));
  };
  const corsHeaders = cors({
    origin: (origin, callback) => callback(null, origin !== undefined && policy.isAllowedCrossOrigin(origin)),
    allowedHeaders: ['Authorization', 'Content-Type', 'Content-Encoding'],
    exposedHeaders: ['Location'],
    maxAge: 600,
  });
  return [refuseForeign, corsHeaders];
}

/** Sets `res.locals.caller` from the Bearer credential, or refuses with 401/403. */
export function requireCaller(auth: Authenticator, options: { allowInvite: boolean }): RequestHandler {
  return (req, res, next) => {
    auth.identify(bearerCredential(req.headers.authorization), req.ip ?? '', options.allowInvite).then(
      (caller) => {
        res.locals.caller = caller;
        next();
      },
      (error: unknown) => {
        if (error instanceof AppError && error.code === 'unauthorized') res.set('WWW-Authenticate', 'Bearer');
        next(error);
      },
    );
  };
}
