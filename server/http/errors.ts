import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../../contract/errors.ts';
import { errorsTotal } from '../metrics/metrics.ts';

/** body-parser's own errors (size, aborted) as AppErrors, so every refusal has the same JSON shape. */
function fromBodyParser(error: unknown): AppError | undefined {
  const type = (error as { type?: unknown })?.type;
  if (type === 'entity.too.large') return new AppError('image_too_large', 'the request body is larger than the image limit');
  if (type === 'request.aborted') return new AppError('bad_request', 'the request was aborted');
  if (typeof type === 'string') return new AppError('bad_request', 'the request body could not be read');
  return undefined;
}

/** The one place an error becomes an HTTP answer: `{error:{code,message}}` with the code's status. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    const appError = fromBodyParser(error) ?? toAppError(error);
    if (appError.code === 'internal') logger.error({ err: error }, 'request failed');
    errorsTotal.inc({ code: appError.code });
    res.status(appError.httpStatus).json({ error: appError.toJSON() });
  };
}
