/**
 * Composition root: configuration, logger, server. A bad setting, or an address it cannot listen
 * on, ends the process with one line on stderr and status 1 (no stack trace). Once listening it
 * logs the URL of the live page. On SIGINT/SIGTERM it closes the server (RunningServer.close):
 * from then on new live frames and uploads are answered `shutting_down` and /readyz says 503
 * `stopping`; a live frame waiting behind another is answered `shutting_down`; each live frame
 * already in analysis is answered, waiting at most SHUTDOWN_GRACE_MS minus a margin
 * (drainBudgetMs: 4 s of the default 5 s); a frame still in analysis after that gets no answer.
 * Then sockets are disconnected, uploads in progress are cut off, running video jobs stop and are
 * resumed by the next start, and the inference workers end. If all that takes longer than
 * SHUTDOWN_GRACE_MS the process exits with status 1 anyway; otherwise with status 0.
 */
import { pino } from 'pino';
import { type Config, loadConfig } from './config.ts';
import { type RunningServer, startServer } from './server.ts';

/** A start-up problem the user fixes, not a bug: one line, no stack trace, status 1. */
function exitWith(message: string): never {
  process.stderr.write(`moodwire: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(1);
}

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('invalid configuration')) exitWith(error.message);
    throw error;
  }
}

const config = configOrExit();
const logger = pino({ level: config.logLevel, base: { service: 'moodwire' } });
logger.info(
  { backendChoice: config.backend, modelDir: config.modelDir, workers: config.workers, detectors: config.detectors, batch: config.batch },
  'starting',
);

async function serverOrExit(): Promise<RunningServer> {
  try {
    return await startServer(config, logger);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EADDRINUSE') exitWith(`cannot listen on ${config.host}:${config.port}: the port is in use (set PORT or HOST)`);
    if (code === 'EACCES') exitWith(`cannot listen on ${config.host}:${config.port}: permission denied (set PORT or HOST)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') exitWith(`cannot listen on ${config.host}:${config.port}: no such address here (set HOST)`);
    throw error;
  }
}

const server = await serverOrExit();
// server.url names 127.0.0.1 when listening on every interface: an address a browser can open.
logger.info({ url: `${server.url}/` }, `open ${server.url}/ in a browser`);
server.ready.then(
  (inference) => logger.info({ backend: inference.pool.backend, modelVersion: inference.pool.modelVersion }, 'ready'),
  () => {
    logger.fatal('could not start (the error above says what failed); exiting');
    process.exit(1);
  },
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    logger.warn('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownGraceMs);
  force.unref();
  try {
    await server.close();
    logger.info('stopped');
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'error while shutting down');
    process.exit(1);
  }
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
