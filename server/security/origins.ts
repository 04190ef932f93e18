/**
 * Which browser origins may call the API and open sockets: the server's own (the Host the request
 * came to, or PUBLIC_URL) and those in CORS_ORIGINS. A request without an Origin header is not
 * from a browser page of another site (browsers send one on every cross-origin request and on
 * WebSocket handshakes), so it is judged by its credential alone.
 */
import type { IncomingMessage } from 'node:http';
import type { SecurityConfig } from '../config.ts';

export class OriginPolicy {
  readonly #allowed: Set<string>;
  readonly #any: boolean;
  readonly #trustForwardedHost: boolean;

  constructor(security: Pick<SecurityConfig, 'corsOrigins' | 'publicUrl' | 'trustProxy'>) {
    this.#any = security.corsOrigins === '*';
    this.#allowed = new Set(security.corsOrigins === '*' ? [] : security.corsOrigins);
    if (security.publicUrl) this.#allowed.add(new URL(security.publicUrl).origin);
    this.#trustForwardedHost = security.trustProxy !== false;
  }

  /** The Host a browser addressed (X-Forwarded-Host behind a trusted proxy). */
  #host(req: IncomingMessage): string | undefined {
    const forwarded = this.#trustForwardedHost ? req.headers['x-forwarded-host'] : undefined;
    const host = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim() ?? req.headers.host;
    return host?.toLowerCase();
  }

  isSameOrigin(origin: string, req: IncomingMessage): boolean {
    try {
      return new URL(origin).host.toLowerCase() === this.#host(req);
    } catch {
      return false;
    }
  }

  /** An allowed origin other than the server's own (it gets CORS headers). */
  isAllowedCrossOrigin(origin: string): boolean {
    return origin !== 'null' && (this.#any || this.#allowed.has(origin));
  }

  /** Whether a request with this Origin header (or none) may proceed. */
  allows(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    return this.isSameOrigin(origin, req) || this.isAllowedCrossOrigin(origin);
  }
}
