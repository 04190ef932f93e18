/**
 * The client's address as every per-address limit counts it: the TCP peer, or under TRUST_PROXY
 * the address the trusted proxies forwarded (X-Forwarded-For), the same rule express applies to
 * `req.ip`, so HTTP routes and socket.io handshakes agree.
 */
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

export type TrustProxy = boolean | number | string[];

export function compileTrust(trust: TrustProxy): (address: string, hop: number) => boolean {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return proxyaddr.compile(trust);
}

export function clientAddress(req: IncomingMessage, trust: (address: string, hop: number) => boolean): string {
  return normalise(proxyaddr(req, trust));
}

/** IPv4-mapped IPv6 (::ffff:1.2.3.4) as plain IPv4, so one client has one key. */
function normalise(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(normalise(address));
}
