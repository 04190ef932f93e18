/**
 * Session invites: signed, expiring tokens (JWT, HS256, via jose) bound to one session and one
 * role. Whoever holds one may join that session only; an observer's frames are refused. The
 * signing key is SecurityConfig.tokenSecret (shared by nodes with the same API keys).
 */
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AppError } from '../../contract/errors.ts';
import type { InviteRole } from '../../contract/http.ts';

const ISSUER = 'moodwire';
const AUDIENCE = 'moodwire:session';

export interface InviteClaims {
  sessionId: string;
  role: InviteRole;
  /** ms since the epoch */
  expiresAt: number;
}

export class InviteSigner {
  readonly #secret: Uint8Array;

  constructor(secret: Uint8Array) {
    this.#secret = secret;
  }

  async sign(sessionId: string, role: InviteRole, ttlSec: number): Promise<{ token: string; expiresAt: number }> {
    const nowSec = Math.floor(Date.now() / 1000);
    const expSec = nowSec + ttlSec;
    const token = await new SignJWT({ role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(sessionId)
      .setIssuedAt(nowSec)
      .setExpirationTime(expSec)
      .sign(this.#secret);
    return { token, expiresAt: expSec * 1000 };
  }

  /** The claims of a valid token; throws AppError `unauthorized` for anything else (bad signature, expired, malformed). */
  async verify(token: string): Promise<InviteClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#secret, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      const role = payload.role;
      if (typeof payload.sub !== 'string' || (role !== 'participant' && role !== 'observer') || typeof payload.exp !== 'number') {
        throw new AppError('unauthorized', 'the invite is not valid');
      }
      return { sessionId: payload.sub, role, expiresAt: payload.exp * 1000 };
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new AppError('unauthorized', 'the invite has expired; ask for a new one');
      throw new AppError('unauthorized', 'the invite or API key is not valid');
    }
  }
}

/** Whether a credential looks like a JWT (three base64url parts) rather than an API key. */
export function looksLikeToken(credential: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);
}
