/** Session ids in the URL (`?session=ID`): read, validate, and make new ones people can read aloud. */
import { SESSION_ID_PATTERN } from '../../../contract/socket.ts';

/** Whether `id` is a session id the server accepts (SESSION_ID_PATTERN). */
export function isValidSessionId(id: string): boolean {
  return SESSION_ID_PATTERN.test(id);
}

export function sessionIdFromUrl(href: string): string | undefined {
  const id = new URL(href).searchParams.get('session')?.trim();
  return id && isValidSessionId(id) ? id : undefined;
}

export function urlWithSession(href: string, sessionId: string): string {
  const url = new URL(href);
  url.searchParams.set('session', sessionId);
  return url.toString();
}

const WORDS = ['amber', 'brisk', 'cedar', 'delta', 'ember', 'fable', 'grove', 'harbor', 'indigo', 'juniper', 'kite', 'lumen', 'maple', 'nova', 'orbit', 'pixel', 'quartz', 'river', 'sable', 'tidal'];

/** e.g. "maple-orbit-4821"; `random` is injectable for tests. */
export function newSessionId(random: () => number = Math.random): string {
  const pick = () => WORDS[Math.floor(random() * WORDS.length)] ?? 'moodwire';
  return `${pick()}-${pick()}-${String(Math.floor(random() * 10000)).padStart(4, '0')}`;
}
