/** Invites to the page's own session: POST /api/v1/sessions/:sessionId/invites (contract/http.ts). */
import type { Invite, InviteRequest, InviteRole } from '../../../contract/http.ts';
import { ApiError, errorFrom } from '../shared/api-error.ts';

/**
 * A new invite to `sessionId`; `headers` carry the page's credential (an API key, or a
 * participant's own invite token; none where the server serves this machine without keys).
 */
export async function createInvite(sessionId: string, role: InviteRole, headers: Record<string, string>): Promise<Invite> {
  const body: InviteRequest = { role };
  let response: Response;
  try {
    response = await fetch(`api/v1/sessions/${encodeURIComponent(sessionId)}/invites`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError('network', 'The server cannot be reached.', 0);
  }
  const text = await response.text();
  if (response.status !== 201) throw errorFrom(response.status, text);
  return JSON.parse(text) as Invite;
}
