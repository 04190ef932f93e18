/**
 * POST /api/v1/sessions/:sessionId/invites: a signed, expiring invite to one live session. An API
 * key (or a loopback client in protected mode) invites to any session; a participant's invite
 * token invites to its own session only, for no longer than it is valid itself. The token goes in
 * the link's fragment, which browsers never send to servers, and is never logged.
 */
import express, { type Router } from 'express';
import { AppError } from '../../contract/errors.ts';
import { type Invite, inviteRequestSchema } from '../../contract/http.ts';
import { SESSION_ID_PATTERN } from '../../contract/socket.ts';
import { describeIssue } from '../../contract/socket-schemas.ts';
import type { SecurityConfig } from '../config.ts';
import type { Authenticator } from '../security/authenticator.ts';
import { callerOf } from '../security/caller.ts';
import { requireCaller } from './security.ts';

export function invitesRouter(auth: Authenticator, security: Pick<SecurityConfig, 'inviteDefaultTtlSec' | 'inviteMaxTtlSec' | 'publicUrl'>): Router {
  const router = express.Router();
  router.post('/:sessionId/invites', requireCaller(auth, { allowInvite: true }), express.json({ limit: '4kb' }), async (req, res) => {
    const sessionId = String(req.params.sessionId ?? '');
    if (!SESSION_ID_PATTERN.test(sessionId)) throw new AppError('invalid_session_id', 'session ids are 1-64 characters of A-Z a-z 0-9 _ -');
    const parsed = inviteRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw new AppError('bad_request', describeIssue(parsed.error));
    const caller = callerOf(res);
    let maxTtl = security.inviteMaxTtlSec;
    if (caller.invite) {
      if (caller.invite.sessionId !== sessionId) throw new AppError('forbidden', 'this invite is for another session');
      if (caller.invite.role !== 'participant') throw new AppError('forbidden', 'observers cannot invite others');
      maxTtl = Math.min(maxTtl, Math.floor((caller.invite.expiresAt - Date.now()) / 1000));
    }
    const ttlSec = parsed.data.ttlSec ?? Math.min(security.inviteDefaultTtlSec, maxTtl);
    if (ttlSec > maxTtl) throw new AppError('bad_request', `ttlSec may be at most ${maxTtl} s here`);
    if (ttlSec < 1) throw new AppError('unauthorized', 'the invite has expired; ask for a new one');
    const { token, expiresAt } = await auth.invites.sign(sessionId, parsed.data.role, ttlSec);
    const base = security.publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    const invite: Invite = {
      token,
      sessionId,
      role: parsed.data.role,
      expiresAt: new Date(expiresAt).toISOString(),
      url: `${base}/?session=${encodeURIComponent(sessionId)}#invite=${encodeURIComponent(token)}`,
    };
    res.status(201).json(invite);
  });
  return router;
}
