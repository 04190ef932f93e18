/**
 * Turns a credential (an API key or an invite token, or none) and a client address into a Caller,
 * or refuses: the one rule HTTP routes and socket.io handshakes share.
 *
 * - MOODWIRE_AUTH=off: everyone is `open`.
 * - No API keys configured (protected mode): loopback clients are `local`; anyone else is refused.
 * - API keys configured: a valid key is needed (or, where allowed, a valid invite token).
 */
import { AppError } from '../../contract/errors.ts';
import type { SecurityConfig } from '../config.ts';
import { ApiKeys } from './api-keys.ts';
import type { Caller } from './caller.ts';
import { isLoopbackAddress } from './client-address.ts';
import { InviteSigner, looksLikeToken } from './invites.ts';

export const PROTECTED_MODE_MESSAGE =
  'this server has no API keys configured and serves only clients on its own machine; set MOODWIRE_API_KEYS to serve others';

export class Authenticator {
  readonly enabled: boolean;
  readonly keys: ApiKeys;
  readonly invites: InviteSigner;

  constructor(security: Pick<SecurityConfig, 'enabled' | 'apiKeys' | 'tokenSecret'>) {
    this.enabled = security.enabled;
    this.keys = new ApiKeys(security.apiKeys);
    this.invites = new InviteSigner(security.tokenSecret);
  }

  /** Whether a client at `address` may use the server at all (protected mode refuses non-loopback clients). */
  admits(address: string): boolean {
    return !this.enabled || this.keys.configured || isLoopbackAddress(address);
  }

  /**
   * Who presents `credential` from `address`. `allowInvite`: an invite token is accepted (the
   * socket handshake and the invite route); elsewhere only API keys are.
   */
  async identify(credential: string | undefined, address: string, allowInvite: boolean): Promise<Caller> {
    if (!this.enabled) return { kind: 'open', owner: 'open', address };
    if (!this.admits(address)) throw new AppError('forbidden', PROTECTED_MODE_MESSAGE);
    if (credential) {
      const owner = this.keys.owner(credential);
      if (owner) return { kind: 'key', owner, address };
      if (allowInvite && looksLikeToken(credential)) {
        const invite = await this.invites.verify(credential);
        return { kind: 'invite', owner: `invite:${invite.sessionId}`, address, invite };
      }
      throw new AppError('unauthorized', allowInvite ? 'the invite or API key is not valid' : 'the API key is not valid');
    }
    if (!this.keys.configured) return { kind: 'local', owner: 'local', address };
    throw new AppError('unauthorized', allowInvite ? 'send an invite token or an API key' : 'send the header "Authorization: Bearer <API key>"');
  }
}
