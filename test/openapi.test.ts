/**
 * The OpenAPI document: generated from contract/http.ts, served without a credential at
 * /api/v1/openapi.json, every documented operation is a real route of the server (never the
 * "no route" 404), and Swagger UI at /api-docs/ renders it in Chromium under the server's CSP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { RunningServer } from '../server/server.ts';
import { startTestServer } from './live-support.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'openapi-test-key-0000000';

interface OpenApiDoc {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas?: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

describe('OpenAPI document and page', { timeout: 300_000 }, () => {
  let server: RunningServer;
  let doc: OpenApiDoc;

  before(async () => {
    server = await startTestServer({ MOODWIRE_API_KEYS: KEY });
    const res = await fetch(`${server.url}/api/v1/openapi.json`);
    assert.equal(res.status, 200, 'served without a credential');
    doc = (await res.json()) as OpenApiDoc;
  });

  after(async () => {
    await server.close();
  });

  it('describes every HTTP route with its answers and the bearer scheme', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.paths).sort(), ['/api/v1/analyze', '/api/v1/sessions/{sessionId}/invites', '/api/v1/videos', '/api/v1/videos/{id}', '/api/v1/videos/{id}/timeline', '/api/v1/videos/{id}/tracks/{trackId}/thumbnail']);
    assert.ok(doc.paths['/api/v1/analyze']!.post!.responses['200']);
    assert.ok(doc.paths['/api/v1/sessions/{sessionId}/invites']!.post!.responses['201']);
    assert.ok(doc.components.securitySchemes.apiKey);
    // The answer schemas are the contract's (a field of a job view shows up in the document).
    assert.match(JSON.stringify(doc.paths['/api/v1/videos/{id}']!.get!.responses['200']), /framesAnalyzed/);
  });

  it('every documented operation is a route of the server', async () => {
    for (const [route, methods] of Object.entries(doc.paths)) {
      const url = `${server.url}${route.replace('{id}', '00000000-0000-4000-8000-000000000000').replace('{sessionId}', 'standup').replace('{trackId}', '1')}`;
      for (const method of Object.keys(methods)) {
        const res = await fetch(url, { method: method.toUpperCase(), headers: { Authorization: `Bearer ${KEY}` } });
        const body = await res.text();
        assert.doesNotMatch(body, /no route/, `${method.toUpperCase()} ${route}: ${res.status} ${body}`);
      }
    }
  });

  it('Swagger UI renders the document at /api-docs/ under the CSP', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      await page.goto(`${server.url}/api-docs/`);
      await page.waitForSelector('.opblock', { timeout: 60_000 });
      assert.ok((await page.locator('.opblock').count()) >= 7);
      assert.match((await page.textContent('.info .title')) ?? '', /Moodwire HTTP API/);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
});
