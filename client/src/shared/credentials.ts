/**
 * The pages' credentials: an invite token (from a link's `#invite=<token>` fragment) and an API
 * key (typed by the user), both kept in the tab's sessionStorage so that a reload still works and
 * nothing outlives the tab. With neither (a server without API keys, serving this machine) the
 * pages send no credential at all.
 */
import type { InviteRole } from '../../../contract/http.ts';

/** The part of the Web Storage API used here (sessionStorage in the pages, a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const INVITE_STORAGE_KEY = 'moodwire:invite';
export const API_KEY_STORAGE_KEY = 'moodwire:api-key';

/** What the page can read of an invite token without checking it (the server verifies it). */
export interface InviteClaims {
  sessionId: string;
  role: InviteRole;
  /** ms since the epoch */
  expiresAt: number;
}

/**
 * The invite token in a URL's fragment (`#invite=<token>`), and the URL without it (other
 * fragment parameters kept), for `history.replaceState`.
 */
export function takeInviteFromUrl(href: string): { token: string | undefined; cleanHref: string } {
  const url = new URL(href);
  const params = new URLSearchParams(url.hash.replace(/^#/, ''));
  const token = params.get('invite')?.trim() || undefined;
  if (!params.has('invite')) return { token: undefined, cleanHref: href };
  params.delete('invite');
  const rest = params.toString();
  url.hash = rest ? `#${rest}` : '';
  // `url.hash = ''` leaves no "#" behind.
  return { token, cleanHref: url.toString() };
}

function base64UrlDecode(part: string): string {
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * The session, role and expiry an invite token claims (a JWT: `sub`, `role`, `exp`), unverified:
 * only for what the page shows and whether it starts the camera. Undefined for anything else.
 */
export function inviteClaims(token: string): InviteClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const payload = JSON.parse(base64UrlDecode(parts[1])) as { sub?: unknown; role?: unknown; exp?: unknown };
    if (typeof payload.sub !== 'string' || (payload.role !== 'participant' && payload.role !== 'observer') || typeof payload.exp !== 'number') return undefined;
    return { sessionId: payload.sub, role: payload.role, expiresAt: payload.exp * 1000 };
  } catch {
    return undefined;
  }
}

/** The `Authorization` header for a credential, or no header without one. */
export function bearerHeaders(credential: string | undefined): Record<string, string> {
  return credential ? { Authorization: `Bearer ${credential}` } : {};
}

/** The tab's invite token and API key. Storage that throws (disabled, full) only loses persistence. */
export class Credentials {
  readonly #store: KeyValueStore | undefined;
  readonly #memory = new Map<string, string>();

  constructor(store: KeyValueStore | undefined) {
    this.#store = store;
  }

  /** The tab's sessionStorage when the browser allows it. */
  static forPage(): Credentials {
    let store: KeyValueStore | undefined;
    try {
      store = window.sessionStorage;
    } catch {
      store = undefined;
    }
    return new Credentials(store);
  }

  get invite(): string | undefined {
    return this.#get(INVITE_STORAGE_KEY);
  }

  get apiKey(): string | undefined {
    return this.#get(API_KEY_STORAGE_KEY);
  }

  /** The invite's claims (see inviteClaims), if the tab holds an invite. */
  get inviteClaims(): InviteClaims | undefined {
    const token = this.invite;
    return token ? inviteClaims(token) : undefined;
  }

  setInvite(token: string | undefined): void {
    this.#set(INVITE_STORAGE_KEY, token);
  }

  setApiKey(key: string | undefined): void {
    this.#set(API_KEY_STORAGE_KEY, key?.trim() || undefined);
  }

  /**
   * Forgets an invite whose claimed expiry has passed (the server would refuse it). Returns
   * whether it did.
   */
  dropExpiredInvite(now: number = Date.now()): boolean {
    const claims = this.inviteClaims;
    if (!claims || claims.expiresAt > now) return false;
    this.setInvite(undefined);
    return true;
  }

  /** What a request presents: the API key if the user gave one, else the invite token, else nothing. */
  get credential(): string | undefined {
    return this.apiKey ?? this.invite;
  }

  /** `Authorization: Bearer <credential>`, or no header without a credential. */
  authHeaders(): Record<string, string> {
    return bearerHeaders(this.credential);
  }

  #get(key: string): string | undefined {
    try {
      const stored = this.#store?.getItem(key);
      if (stored) return stored;
    } catch {
      // storage unavailable: the in-memory copy below
    }
    return this.#memory.get(key);
  }

  #set(key: string, value: string | undefined): void {
    if (value) this.#memory.set(key, value);
    else this.#memory.delete(key);
    try {
      if (value) this.#store?.setItem(key, value);
      else this.#store?.removeItem(key);
    } catch {
      // storage unavailable: kept in memory for this page only
    }
  }
}
