/**
 * The HTTP API as an OpenAPI 3.1 document, generated from the zod schemas of contract/http.ts (the
 * same ones the routes validate with and the tests parse answers with), so it cannot drift from
 * the code. Served at GET /api/v1/openapi.json and rendered by Swagger UI at /api-docs/.
 */
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { z } from 'zod';
import {
  analyzeResultSchema,
  httpErrorSchema,
  inviteRequestSchema,
  inviteSchema,
  timelineQuerySchema,
  videoAcceptedSchema,
  videoJobIdSchema,
  videoJobListSchema,
  videoJobViewSchema,
  videoListQuerySchema,
  videoTimelineSchema,
  videoUploadOptionsSchema,
} from '../../contract/http.ts';
import { SESSION_ID_PATTERN } from '../../contract/socket.ts';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

/** `{error: {code, message}}` answers, one per status, with the codes that status carries. */
function errors(entries: Record<number, string>): ZodOpenApiResponsesObject {
  return Object.fromEntries(Object.entries(entries).map(([status, description]) => [status, { description, content: json(httpErrorSchema) }]));
}

const AUTH_ERRORS = { 401: 'unauthorized: no or an unknown API key (when keys are configured)', 403: 'forbidden: a foreign Origin, or a client of another machine in protected mode' };

/** Video routes with REDIS_URL while this node cannot reach Redis (where the jobs are). */
const VIDEO_NOT_READY = { 503: 'not_ready: the video service is starting, or (REDIS_URL) this node cannot reach Redis; try again' };
const jobId = z.object({ id: videoJobIdSchema.meta({ description: 'the job id from the upload answer' }) });

const operations: Record<string, Record<string, ZodOpenApiOperationObject>> = {
  '/api/v1/analyze': {
    post: {
      summary: 'Analyse one image',
      description: 'Detects faces (the accurate per-image detector), aligns each to FER2013 framing and classifies 7 emotions. Scores describe how a face looks to a FER2013-trained model, not what anyone feels.',
      requestBody: {
        required: true,
        content: Object.fromEntries(['image/jpeg', 'image/png', 'image/webp'].map((type) => [type, { schema: z.string().meta({ format: 'binary' }) }])),
      },
      responses: {
        200: { description: 'faces with their 7 probabilities', content: json(analyzeResultSchema) },
        ...errors({ 400: 'bad_request: a Content-Encoding the body does not match', ...AUTH_ERRORS, 413: 'image_too_large', 415: 'unsupported_media_type', 422: 'undecodable_image', 429: 'rate_limited', 503: 'not_ready, queue_full or shutting_down' }),
      },
    },
  },
  '/api/v1/videos': {
    get: {
      summary: "The caller's video jobs, newest first",
      requestParams: { query: videoListQuerySchema },
      responses: { 200: { description: 'jobs', content: json(videoJobListSchema) }, ...errors({ ...AUTH_ERRORS, ...VIDEO_NOT_READY }) },
    },
    post: {
      summary: 'Upload a video for analysis',
      description: 'multipart/form-data with the video in the field `video`; probed before it is queued. Poll the job or follow `video:progress` on socket.io.',
      requestParams: { query: videoUploadOptionsSchema },
      requestBody: {
        required: true,
        content: { 'multipart/form-data': { schema: z.object({ video: z.string().meta({ format: 'binary' }), fps: z.number().min(0.1).max(30).optional() }) } },
      },
      responses: {
        202: { description: 'accepted; the Location header is the job URL', content: json(videoAcceptedSchema) },
        ...errors({ 400: 'bad_request', ...AUTH_ERRORS, 413: 'payload_too_large or video_too_long', 415: 'unsupported_media_type', 422: 'undecodable_video', 429: 'rate_limited: uploads at once or queued jobs per client', 503: 'queue_full, or not_ready (the video service is starting, or with REDIS_URL this node cannot reach Redis)' }),
      },
    },
  },
  '/api/v1/videos/{id}': {
    get: {
      summary: 'A video job',
      requestParams: { path: jobId },
      responses: { 200: { description: 'the job', content: json(videoJobViewSchema) }, ...errors({ ...AUTH_ERRORS, 404: "not_found (also another key's job)", ...VIDEO_NOT_READY }) },
    },
    delete: {
      summary: 'Stop a job and delete its upload and results',
      requestParams: { path: jobId },
      responses: { 204: { description: 'deleted' }, ...errors({ ...AUTH_ERRORS, 404: 'not_found', ...VIDEO_NOT_READY }) },
    },
  },
  '/api/v1/videos/{id}/timeline': {
    get: {
      summary: 'Per-face timeline of a video job (JSON or CSV)',
      requestParams: { path: jobId, query: timelineQuerySchema },
      responses: {
        200: { description: 'what was analysed so far', content: { ...json(videoTimelineSchema), 'text/csv': { schema: z.string() } } },
        ...errors({ 400: 'bad_request', ...AUTH_ERRORS, 404: 'not_found', ...VIDEO_NOT_READY }),
      },
    },
  },
  '/api/v1/videos/{id}/tracks/{trackId}/thumbnail': {
    get: {
      summary: 'A 96x96 JPEG of the face a track follows (uploads that asked for thumbnails)',
      requestParams: { path: jobId.extend({ trackId: z.coerce.number().int().min(0) }) },
      responses: { 200: { description: 'the picture', content: { 'image/jpeg': { schema: z.string().meta({ format: 'binary' }) } } }, ...errors({ ...AUTH_ERRORS, 404: 'not_found', ...VIDEO_NOT_READY }) },
    },
  },
  '/api/v1/sessions/{sessionId}/invites': {
    post: {
      summary: 'Invite someone to a live session',
      description: 'A signed, expiring token for one session and one role. Bearer: an API key, or a participant invite of the same session.',
      requestParams: { path: z.object({ sessionId: z.string().regex(SESSION_ID_PATTERN) }) },
      requestBody: { content: json(inviteRequestSchema) },
      responses: { 201: { description: 'the invite and its link', content: json(inviteSchema) }, ...errors({ 400: 'bad_request or invalid_session_id', ...AUTH_ERRORS }) },
    },
  },
};

export function openApiDocument(version: string): ReturnType<typeof createDocument> {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Moodwire HTTP API',
      version,
      description: 'Facial emotion analysis of images and videos, invites to live sessions. The live protocol (socket.io) is in docs/protocol.md.',
    },
    security: [{ apiKey: [] }],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key (MOODWIRE_API_KEYS); not needed by loopback clients of a server without keys' } } },
    paths: operations,
  });
}
