/**
 * Composition root: configuration, logger, server. On SIGINT/SIGTERM it closes the server: sockets
 * are disconnected (frames still in analysis are not answered), running video jobs stop and are
 * resumed by the next start, the inference workers end. If that takes longer than
 * SHUTDOWN_GRACE_MS the process exits with status 1 anyway.
 */
import { pino } from 'pino';
import { loadConfig } from './config.ts';
import { startServer } from './server.ts';

const config = loadConfig();
const logger = pino({ level: config.logLevel, base: { service: 'moodwire' } });
logger.info(
  { backendChoice: config.backend, modelDir: config.modelDir, workers: config.workers, detectors: config.detectors, batch: config.batch },
  'starting',
);

const server = await startServer(config, logger);
server.ready.then(
  (inference) => logger.info({ backend: inference.pool.backend, modelVersion: inference.pool.modelVersion }, 'ready'),
  () => {
    logger.fatal('could not load the models; exiting');
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
