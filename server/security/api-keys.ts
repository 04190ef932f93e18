/**
 * API keys (MOODWIRE_API_KEYS): who a Bearer credential belongs to. Keys are compared in constant
 * time and never stored or logged; a job's owner is a hash prefix of the key that created it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  get configured(): boolean {
    return this.#digests.length > 0;
  }

  /** The owner id of `key` (`key:<16 hex>`), or undefined when it is not one of the keys. */
  owner(key: string): string | undefined {
    const candidate = digest(key);
    // Every key is compared (no early exit), each in constant time.
    let match: Buffer | undefined;
    for (const known of this.#digests) if (timingSafeEqual(known, candidate)) match = known;
    return match ? `key:${match.toString('hex').slice(0, 16)}` : undefined;
  }
}

/** The credential of an `Authorization: Bearer <credential>` header, if there is one. */
export function bearerCredential(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
