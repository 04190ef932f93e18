/**
 * socket.io edge of the live path: validates every payload (zod), answers every acknowledged
 * event with `Ack<T>`, applies per-socket backpressure to frames, and relays each analysed frame
 * to the other members of the session as `emotions`.
 */
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { z } from 'zod';
import { AppError, toAppError, toWireErrorCode } from '../../contract/errors.ts';
import { connectedSockets, errorsTotal, frameLatencySeconds, framesDropped, framesReceived } from '../metrics/metrics.ts';
import type { FrameAnalyzer } from '../pipeline/types.ts';
import { LatestFrameGate } from './backpressure.ts';
import type { Ack, ClientToServerEvents, FrameResult, ServerToClientEvents, WireError } from '../../contract/socket.ts';
import { describeIssue, frameSchema, joinSchema, leaveSchema, timelineSchema, videoSubscribeSchema } from '../../contract/socket-schemas.ts';
import type { ClientLimitsConfig } from '../config.ts';
import type { Authenticator } from '../security/authenticator.ts';
import type { Caller } from '../security/caller.ts';
import type { OriginPolicy } from '../security/origins.ts';
import { EventRate } from './event-rate.ts';
import { handshakeAuth, originCheck, type SocketData } from './handshake.ts';
import { MemorySessionStore } from './memory-sessions.ts';
import type { LiveParticipant as Participant, SessionLimits, SessionStore } from './session-store.ts';

export interface LiveDeps {
  /** undefined until the models are loaded: frames are then refused with not_ready */
  analyzer: () => FrameAnalyzer | undefined;
  limits: SessionLimits;
  maxImageBytes: number;
  logger: Logger;
  auth: Authenticator;
  origins: OriginPolicy;
  trustProxy: (address: string, hop: number) => boolean;
  clientLimits: ClientLimitsConfig;
  /** Whether the caller may follow this video job's progress (its owner); false for unknown jobs. */
  canReadVideo: (jobId: string, caller: Caller) => boolean | Promise<boolean>;
  /** where sessions live; default: this node's memory (MemorySessionStore). REDIS_URL: RedisSessionStore */
  sessions?: SessionStore;
}

export type LiveServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type LiveSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** What `drain` did. */
export interface DrainReport {
  /** frames in analysis when the drain began (one per socket at most) */
  inFlight: number;
  /** frames that waited behind those, answered `shutting_down` */
  refused: number;
  /** every frame in analysis was answered before the deadline */
  answered: boolean;
  ms: number;
}

interface PendingFrame {
  seq: number;
  ts: number | undefined;
  image: Uint8Array;
  receivedAt: number;
  /** Who sent it: the frame belongs to this membership, not to whatever the socket joins later. */
  sender: Participant;
  ack: (result: Ack<FrameResult>) => void;
}

const sessionRoom = (sessionId: string): string => `session:${sessionId}`;

/** The role `caller` joins `sessionId` with; an invite opens its own session only, until it expires. */
function admitToSession(caller: Caller, sessionId: string): 'participant' | 'observer' {
  if (!caller.invite) return 'participant';
  if (caller.invite.expiresAt <= Date.now()) throw new AppError('unauthorized', 'the invite has expired; ask for a new one');
  if (caller.invite.sessionId !== sessionId) throw new AppError('forbidden', `this invite is for another session, not ${sessionId}`);
  return caller.invite.role;
}

const LEFT_BEFORE_ANALYSED = 'left the session before the frame was analysed';

function refusal(error: unknown): { ok: false; error: WireError } {
  const appError = toAppError(error);
  errorsTotal.inc({ code: appError.code });
  return { ok: false, error: { code: toWireErrorCode(appError.code), message: appError.message } };
}

/** The ack callback of event E, as the event map types it. */
type AckOf<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[1];

function parse<S extends z.ZodType>(schema: S, payload: unknown): z.infer<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw new AppError('invalid_payload', describeIssue(parsed.error));
  return parsed.data;
}

/**
 * Registers a handler for a client event. Arguments are untrusted whatever the event map says, so
 * the handler gets the payload as `unknown` (it validates with the event's zod schema) and an ack
 * typed by the event map: the client's callback when it sent one (also when it sent a callback
 * alone, without a payload), else a no-op, so a bad client never crashes the server.
 */
function onEvent<E extends keyof ClientToServerEvents>(socket: LiveSocket, event: E, rate: EventRate, handler: (payload: unknown, ack: AckOf<E>) => void): void {
  const listener = (...args: unknown[]): void => {
    const [first, second] = args;
    const callback = typeof second === 'function' ? second : typeof first === 'function' ? first : undefined;
    const noAck: AckOf<E> = () => undefined;
    const ack = typeof callback === 'function' ? (callback as AckOf<E>) : noAck;
    if (!rate.take()) {
      if (event === 'frame') framesDropped.inc({ reason: 'rate_limited' });
      // Every ack type accepts a refusal.
      (ack as (result: Ack<never>) => void)(refusal(new AppError('rate_limited', `more than ${rate.perSecond} events a second from this socket`)));
      return;
    }
    handler(typeof first === 'function' ? undefined : first, ack);
  };
  // Widened from E: socket.io types a listener of a generic event name as `never`.
  const name: keyof ClientToServerEvents = event;
  socket.on(name, listener);
}

export function attachLiveServer(
  httpServer: HttpServer,
  deps: LiveDeps,
): {
  io: LiveServer;
  sessions: SessionStore;
  /**
   * Shutdown's first step: from now on every new frame is answered `shutting_down`, a frame
   * waiting behind another is answered `shutting_down` at once, and the promise resolves when each
   * frame in analysis has been answered, or at `deadlineMs` (a performance.now() time) if sooner.
   * Sockets stay connected; closing them is the caller's next step.
   */
  drain(deadlineMs: number): Promise<DrainReport>;
} {
  const io: LiveServer = new Server(httpServer, {
    // Room for an oversized image to arrive and be refused with a clear answer instead of a disconnect.
    maxHttpBufferSize: deps.maxImageBytes * 2 + 64 * 1024,
    // CORS headers for allowed origins only; allowRequest refuses the others on every transport.
    cors: { origin: (origin, callback) => callback(null, origin !== undefined && deps.origins.isAllowedCrossOrigin(origin)) },
    allowRequest: originCheck(deps.origins),
  });
  const sessions = deps.sessions ?? new MemorySessionStore(deps.limits);
  // Comings and goings no socket of this node announced (another node died, Redis came back).
  sessions.onPresence((changes) => {
    for (const { change, sessionId, participantId, name } of changes) {
      io.to(sessionRoom(sessionId)).emit(change === 'left' ? 'participant:left' : 'participant:joined', { participantId, ...(name ? { name } : {}) });
    }
  });
  io.use(handshakeAuth({ auth: deps.auth, trustProxy: deps.trustProxy, maxConnectionsPerAddress: deps.clientLimits.maxConnectionsPerAddress }));
  // Shutdown (drain): the gate of every connected socket, and whether new frames are refused.
  const gates = new Set<LatestFrameGate<PendingFrame>>();
  let draining = false;

  io.on('connection', (socket: LiveSocket) => {
    connectedSockets.inc();
    const caller = socket.data.caller;
    const rate = new EventRate(deps.clientLimits.socketEventsPerSecond);
    let participant: Participant | undefined;
    // Joins and leaves of this socket run one after the other (the store may be Redis); one that
    // finds nothing before it starts at once, so a leave takes effect before the next event.
    let membership: Promise<void> = Promise.resolve();
    let steps = 0;
    const serially = (step: () => Promise<void>): void => {
      steps += 1;
      const run = async (): Promise<void> => {
        try {
          await step();
        } finally {
          steps -= 1;
        }
      };
      membership = (steps === 1 ? run() : membership.then(run)).catch((error: unknown) => deps.logger.error({ err: error }, 'session membership step failed'));
    };

    const analyse = async (frame: PendingFrame): Promise<void> => {
      try {
        const analyzer = deps.analyzer();
        if (!analyzer) throw new AppError('not_ready', 'the models are still loading; try again shortly');
        const current = frame.sender;
        if (participant !== current) throw new AppError('not_joined', LEFT_BEFORE_ANALYSED);
        const analysis = await analyzer.analyzeEncoded(frame.image, 'live', current.stream.context(Date.now()));
        // The sender left (session:leave, disconnect, or a join elsewhere) while the frame was
        // analysed: the others were told participant:left, so nothing of it may reach them now,
        // and its timeline stays as it was when it left.
        if (participant !== current) {
          framesDropped.inc({ reason: 'disconnected' });
          errorsTotal.inc({ code: 'not_joined' });
          frame.ack({ ok: false, error: { code: 'not_joined', message: LEFT_BEFORE_ANALYSED } });
          return;
        }
        const now = Date.now();
        current.stream.record(analysis, now);
        // A new shot shows other people (or the same ones elsewhere): no track continues across a cut.
        if (analysis.keyframe === 'cut') current.tracker.endAllTracks();
        const faces = current.tracker.update(analysis.faces, now);
        const ts = frame.ts ?? Date.now();
        // The frame is answered even when its timeline sample cannot be written (Redis away).
        await sessions.record(current, faces, frame.seq, ts).catch((error: unknown) => {
          deps.logger.debug({ err: error, participantId: current.id }, 'timeline sample not recorded');
        });
        if (participant !== current) {
          framesDropped.inc({ reason: 'disconnected' });
          errorsTotal.inc({ code: 'not_joined' });
          frame.ack({ ok: false, error: { code: 'not_joined', message: LEFT_BEFORE_ANALYSED } });
          return;
        }
        const serverMs = performance.now() - frame.receivedAt;
        frameLatencySeconds.observe({ source: 'live' }, serverMs / 1000);
        frame.ack({ ok: true, seq: frame.seq, width: analysis.width, height: analysis.height, faces, timings: { ...analysis.timings, server: serverMs } });
        socket.to(sessionRoom(current.sessionId)).emit('emotions', { participantId: current.id, seq: frame.seq, ts, faces });
      } catch (error) {
        const answer = refusal(error);
        framesDropped.inc({ reason: answer.error.code === 'queue_full' ? 'queue_full' : 'error' });
        frame.ack(answer);
      }
    };
    const gate = new LatestFrameGate<PendingFrame>(analyse, (frame, reason) => {
      framesDropped.inc({ reason });
      if (reason === 'shutting_down') {
        errorsTotal.inc({ code: 'shutting_down' });
        frame.ack({ ok: false, error: { code: 'shutting_down', message: `frame ${frame.seq} was not analysed: the server is shutting down` } });
        return;
      }
      errorsTotal.inc({ code: 'frame_dropped' });
      frame.ack({
        ok: false,
        error: {
          code: 'frame_dropped',
          message:
            reason === 'superseded'
              ? `frame ${frame.seq} was replaced by a newer frame while the previous one was analysed`
              : `frame ${frame.seq} was dropped: the connection closed`,
        },
      });
    });
    gates.add(gate);
    if (draining) gate.close('shutting_down');

    /** Leaves the current session, if any: at once for this node (frames in analysis are not relayed), then in the store. */
    const leave = async (): Promise<void> => {
      if (!participant) return;
      const left = participant;
      participant = undefined;
      void socket.leave(sessionRoom(left.sessionId));
      await sessions.leave(left).catch((error: unknown) => deps.logger.warn({ err: error, participantId: left.id }, 'session store leave failed'));
      socket.to(sessionRoom(left.sessionId)).emit('participant:left', { participantId: left.id, ...(left.name ? { name: left.name } : {}) });
    };

    onEvent(socket, 'session:join', rate, (payload, ack) => {
      serially(async () => {
        try {
          const parsed = joinSchema.safeParse(payload);
          if (!parsed.success) {
            const badId = typeof payload === 'object' && payload !== null && 'sessionId' in payload;
            throw new AppError(badId ? 'invalid_session_id' : 'invalid_payload', describeIssue(parsed.error));
          }
          const role = admitToSession(caller, parsed.data.sessionId);
          await leave();
          const joined = await sessions.join(parsed.data.sessionId, parsed.data.name, { role, address: caller.address, maxSessionsPerAddress: deps.clientLimits.maxSessionsPerAddress });
          let others: Awaited<ReturnType<SessionStore['others']>>;
          try {
            others = await sessions.others(joined);
          } catch (error) {
            await sessions.leave(joined).catch(() => undefined);
            throw error;
          }
          // Gone while the store answered: nobody is told it came.
          if (socket.disconnected) {
            await sessions.leave(joined).catch(() => undefined);
            return;
          }
          participant = joined;
          void socket.join(sessionRoom(joined.sessionId));
          socket.to(sessionRoom(joined.sessionId)).emit('participant:joined', { participantId: joined.id, ...(joined.name ? { name: joined.name } : {}) });
          ack({ ok: true, participantId: joined.id, sessionId: joined.sessionId, participants: others, role });
        } catch (error) {
          ack(refusal(error));
        }
      });
    });

    onEvent(socket, 'session:leave', rate, (payload, ack) => {
      serially(async () => {
        try {
          parse(leaveSchema, payload);
          await leave();
          ack({ ok: true });
        } catch (error) {
          ack(refusal(error));
        }
      });
    });

    onEvent(socket, 'frame', rate, (payload, ack) => {
      const receivedAt = performance.now();
      // Every frame that arrives, counted before anything may refuse it (invalid, not joined, too
      // large, superseded, not ready, queue full); the analyzer does not count again.
      framesReceived.inc({ source: 'live' });
      if (draining) {
        framesDropped.inc({ reason: 'shutting_down' });
        ack(refusal(new AppError('shutting_down', 'the server is shutting down: no new frames')));
        return;
      }
      try {
        const frame = parse(frameSchema, payload);
        if (!participant) throw new AppError('not_joined', 'send session:join before frames');
        if (participant.role === 'observer') throw new AppError('forbidden', 'observers watch the session; their frames are not analysed');
        const image = frame.image instanceof Uint8Array ? frame.image : new Uint8Array(frame.image);
        if (image.byteLength > deps.maxImageBytes) {
          throw new AppError('image_too_large', `the image has ${image.byteLength} bytes, the limit is ${deps.maxImageBytes}`);
        }
        gate.offer({ seq: frame.seq, ts: frame.ts, image, receivedAt, sender: participant, ack });
      } catch (error) {
        framesDropped.inc({ reason: 'invalid' });
        ack(refusal(error));
      }
    });

    onEvent(socket, 'timeline:get', rate, (payload, ack) => {
      void (async () => {
        try {
          const request = parse(timelineSchema, payload);
          if (!participant) throw new AppError('not_joined', 'send session:join before timeline:get');
          const { sessionId } = participant;
          if (request.participantId && !(await sessions.hasParticipant(sessionId, request.participantId))) {
            throw new AppError('not_found', `no participant ${request.participantId} in this session`);
          }
          ack({ ok: true, sessionId, participants: await sessions.timelines(sessionId, request.participantId, request.sinceTs) });
        } catch (error) {
          ack(refusal(error));
        }
      })();
    });

    onEvent(socket, 'video:subscribe', rate, async (payload, ack) => {
      try {
        const { id } = parse(videoSubscribeSchema, payload);
        // Another owner's job answers as a missing one does.
        if (!(await deps.canReadVideo(id, caller))) throw new AppError('not_found', 'no such video job');
        const room = `video:${id}`;
        const subscribed = [...socket.rooms].filter((r) => r.startsWith('video:')).length;
        if (!socket.rooms.has(room) && subscribed >= deps.clientLimits.maxVideoSubscriptionsPerSocket) {
          throw new AppError('rate_limited', `a socket follows at most ${deps.clientLimits.maxVideoSubscriptionsPerSocket} video jobs`);
        }
        void socket.join(room);
        ack({ ok: true, id });
      } catch (error) {
        ack(refusal(error));
      }
    });

    socket.on('disconnect', () => {
      connectedSockets.dec();
      gates.delete(gate);
      gate.close();
      serially(leave);
    });
  });

  const drain = async (deadlineMs: number): Promise<DrainReport> => {
    const started = performance.now();
    draining = true;
    const open = [...gates];
    const inFlight = open.filter((gate) => gate.inFlight).length;
    const refused = open.filter((gate) => gate.waiting).length;
    for (const gate of open) gate.close('shutting_down');
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      Promise.all(open.map((gate) => gate.idle())).then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - performance.now()));
      }),
    ]);
    clearTimeout(timer);
    return { inFlight, refused, answered, ms: performance.now() - started };
  };

  return { io, sessions, drain };
}
