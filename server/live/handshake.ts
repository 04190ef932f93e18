/**
 * Who may open a socket: the Origin rule on every transport (engine.io's allowRequest runs for
 * polling handshakes and for direct WebSocket upgrades alike), then, per socket.io connection, the
 * per-address connection cap and the credential in `auth.token` (an invite or an API key). A
 * refused connection gets a connect_error whose `data` is `{code, message}` (ConnectErrorData).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import type { ConnectErrorData } from '../../contract/socket.ts';
import { toAppError } from '../../contract/errors.ts';
import { errorsTotal } from '../metrics/metrics.ts';
import type { Authenticator } from '../security/authenticator.ts';
import type { Caller } from '../security/caller.ts';
import { clientAddress } from '../security/client-address.ts';
import type { OriginPolicy } from '../security/origins.ts';

export interface SocketData {
  caller: Caller;
}

/** engine.io's allowRequest: a foreign Origin never gets a transport. */
export function originCheck(origins: OriginPolicy): (req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void) => void {
  return (req, callback) => {
    const allowed = origins.allows(req);
    if (!allowed) errorsTotal.inc({ code: 'forbidden' });
    callback(allowed ? null : 'origin not allowed', allowed);
  };
}

class ConnectRefused extends Error {
  readonly data: ConnectErrorData;

  constructor(data: ConnectErrorData) {
    super(data.message);
    this.data = data;
  }
}

/** Counts open sockets per client address; a map entry exists only while its count is above 0. */
class ConnectionCounter {
  readonly #open = new Map<string, number>();

  tryOpen(address: string, max: number): boolean {
    const n = this.#open.get(address) ?? 0;
    if (n >= max) return false;
    this.#open.set(address, n + 1);
    return true;
  }

  close(address: string): void {
    const n = (this.#open.get(address) ?? 1) - 1;
    if (n <= 0) this.#open.delete(address);
    else this.#open.set(address, n);
  }
}

export function handshakeAuth(options: {
  auth: Authenticator;
  trustProxy: (address: string, hop: number) => boolean;
  maxConnectionsPerAddress: number;
}): (socket: Socket<never, never, never, SocketData>, next: (err?: Error) => void) => void {
  const counter = new ConnectionCounter();
  return (socket, next) => {
    const address = clientAddress(socket.request, options.trustProxy);
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    if (!counter.tryOpen(address, options.maxConnectionsPerAddress)) {
      errorsTotal.inc({ code: 'rate_limited' });
      next(new ConnectRefused({ code: 'rate_limited', message: `too many connections from one address (at most ${options.maxConnectionsPerAddress})` }));
      return;
    }
    options.auth.identify(typeof token === 'string' && token ? token : undefined, address, true).then(
      (caller) => {
        socket.data.caller = caller;
        socket.once('disconnect', () => counter.close(address));
        next();
      },
      (error: unknown) => {
        counter.close(address);
        const appError = toAppError(error);
        errorsTotal.inc({ code: appError.code });
        const code = appError.code === 'forbidden' || appError.code === 'rate_limited' ? appError.code : 'unauthorized';
        next(new ConnectRefused({ code, message: appError.message }));
      },
    );
  };
}
