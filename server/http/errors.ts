import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../../contract/errors.ts';
import { errorsTotal } from '../metrics/metrics.ts';

/**
 * body-parser's own errors (size, aborted, encoding) as AppErrors, so every refusal has the same
 * JSON shape and none of them is logged as a server fault. A body whose Content-Encoding lies
 * (gzip, deflate or br that does not decompress) reaches here as the zlib error itself, with
 * body-parser's status 400 and no `type`.
 */
function fromBodyParser(error: unknown, contentEncoding: string): AppError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status, code, errno } = error as { type?: unknown; status?: unknown; code?: unknown; errno?: unknown };
  if (type === 'entity.too.large') return new AppError('image_too_large', 'the request body is larger than the image limit');
  if (type === 'request.aborted') return new AppError('bad_request', 'the request was aborted');
  if (type === 'encoding.unsupported') {
    return new AppError('unsupported_media_type', `Content-Encoding ${contentEncoding || 'none'} is not supported: send the body as is (identity), or gzip, deflate or br`);
  }
  if (type === 'charset.unsupported') return new AppError('unsupported_media_type', 'the body\'s charset is not supported');
  if (typeof type === 'string') return new AppError('bad_request', 'the request body could not be read');
  const compressed = contentEncoding !== '' && contentEncoding !== 'identity';
  if (compressed && status === 400 && typeof code === 'string' && typeof errno === 'number') {
    return new AppError('bad_request', `the body is not valid ${contentEncoding || 'compressed data'}: it does not decompress as its Content-Encoding says`);
  }
  return undefined;
}

/** The one place an error becomes an HTTP answer: `{error:{code,message}}` with the code's status. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const encoding = String(req.headers['content-encoding'] ?? '').trim().toLowerCase();
    const appError = fromBodyParser(error, encoding) ?? toAppError(error);
    if (appError.code === 'internal') logger.error({ err: error }, 'request failed');
    errorsTotal.inc({ code: appError.code });
    res.status(appError.httpStatus).json({ error: appError.toJSON() });
  };
}
