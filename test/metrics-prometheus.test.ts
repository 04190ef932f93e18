/**
 * A real Prometheus scrapes the real server while real frames flow; then every query of the
 * Grafana dashboard runs through the Prometheus HTTP API and must return data. Frames come from
 * ../shared/media over socket.io; bad frames and a bad image request make the drop and error counters
 * move, and every frame that arrives counts as received, refused ones included.
 * Needs /usr/bin/prometheus (Debian package `prometheus`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { framesProcessed } from '../server/metrics/metrics.ts';
import sharp from 'sharp';
import type { Socket } from 'socket.io-client';
import type { Ack } from '../contract/socket.ts';
import type { RunningServer } from '../server/server.ts';
import { connectClient, photoNames, readPhoto, startTestServer, type TestClient } from './live-support.ts';
import {
  dashboardQueries,
  grafanaDir,
  type PromResult,
  promQuery,
  prometheusBinary,
  readDashboard,
  type RunningPrometheus,
  sampleValue,
  startPrometheus,
  toPromQL,
  waitFor,
} from './metrics-support.ts';

/** Live frames stream at least this long and at least MIN_LIVE_FRAMES frames (the machine may be busy). */
const TRAFFIC_MS = 10_000;
const MIN_LIVE_FRAMES = 4;
/** Acks may be slow on a loaded machine; the server answers every frame, so wait long. */
const ACK_TIMEOUT_MS = 240_000;

function send<T = unknown>(client: TestClient, event: string, ...args: unknown[]): Promise<Ack<T>> {
  return (client as unknown as Socket).timeout(ACK_TIMEOUT_MS).emitWithAck(event, ...args) as Promise<Ack<T>>;
}

async function processedLocally(): Promise<number> {
  return (await framesProcessed.get()).values.reduce((n, v) => n + v.value, 0);
}

describe('Prometheus scrapes the server and answers every dashboard query', { timeout: 900_000 }, () => {
  const dashboard = readDashboard();
  let server: RunningServer;
  let prometheus: RunningPrometheus | undefined;
  let storageDir: string;
  const clients: TestClient[] = [];
  let target: string;
  /** live: frames answered ok; frameEvents: every `frame` event sent, refused ones included */
  const sent = { live: 0, superseded: 0, frameEvents: 0 };
  /** $__rate_interval as the queries use it: from the first scrape before traffic to now, plus a margin */
  let trafficStartedAt = 0;
  /**
   * Every query is evaluated at the moment of the scrape that holds the final counts, so a slow
   * query run on a busy machine (or a later failed scrape) cannot slide the traffic out of view.
   */
  let evaluateAt = 0;
  const rateWindow = (): string => `${Math.ceil(evaluateAt - trafficStartedAt / 1000) + 15}s`;

  before(async () => {
    // One worker and the tiny detector for uploads keep the run short on a busy 2-core machine.
    server = await startTestServer({ WORKERS: '1', DETECTOR_UPLOAD: 'tiny:320' });
    await server.ready;
    target = new URL(server.url).host;
    storageDir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-prom-'));
    const configFile = path.join(storageDir, 'prometheus.yml');
    writeFileSync(
      configFile,
      [
        'global:',
        // 2 s leaves /metrics (which asks every worker for its tensor count) time on a busy machine.
        '  scrape_interval: 2s',
        '  scrape_timeout: 2s',
        'scrape_configs:',
        '  - job_name: moodwire',
        '    metrics_path: /metrics',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    prometheus = await startPrometheus(configFile, path.join(storageDir, 'data'));
    // Two scrapes before traffic, so rate() has a baseline at the start of the window.
    trafficStartedAt = Date.now();
    await waitFor('two scrapes of the server', async () => {
      const up = await promQuery(prometheus!.url, `count_over_time(up{job="moodwire"}[1m])`);
      return up.length === 1 && sampleValue(up[0]!) >= 2;
    }, 60_000);
  });

  after(async () => {
    for (const client of clients) client.disconnect();
    await prometheus?.stop();
    await server?.close();
    if (storageDir) rmSync(storageDir, { recursive: true, force: true });
  });

  test('the repo prometheus.yml is valid for promtool', () => {
    const promtool = path.join(path.dirname(prometheusBinary), 'promtool');
    const out = execFileSync(promtool, ['check', 'config', path.join(grafanaDir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.match(out, /SUCCESS/);
  });

  test('live frames, bad frames and single images flow while Prometheus scrapes', async () => {
    // 640-wide JPEGs: real faces, cheaper to decode than the 1280-wide originals.
    const photos = await Promise.all(photoNames.map((name) => sharp(readPhoto(name)).resize({ width: 640 }).jpeg({ quality: 85 }).toBuffer()));
    // A frame from a socket that never joined: refused before any analysis, still received.
    const stranger = await connectClient(server.url);
    const notJoined = await send(stranger, 'frame', { seq: 0, image: photos[0] });
    sent.frameEvents += 1;
    assert.equal(notJoined.ok ? 'ok' : notJoined.error.code, 'not_joined');
    stranger.disconnect();
    // Two participants in one session; the first streams, the second only watches.
    for (let i = 0; i < 2; i += 1) {
      const client = await connectClient(server.url);
      clients.push(client);
      const joined = await send(client, 'session:join', { sessionId: 'metrics-test', name: `viewer-${i}` });
      assert.equal(joined.ok, true);
    }
    const streamer = clients[0]!;
    // A single image now and one after the stream: a histogram series is born at its first
    // observation, so only the second one shows in rate() (the image stage panel).
    const firstImage = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(photos[1]!) });
    assert.equal(firstImage.status, 200);
    const stopAt = Date.now() + TRAFFIC_MS;
    let seq = 0;
    // One frame at a time, like a browser waiting for its ack.
    while (Date.now() < stopAt || sent.live < MIN_LIVE_FRAMES) {
      // Each photo twice: a new photo is a scene cut (detect), its repeat is tracked.
      const ack = await send(streamer, 'frame', { seq, image: photos[Math.floor(seq / 2) % photos.length] });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      seq += 1;
      sent.live += 1;
      sent.frameEvents += 1;
    }
    // A burst without waiting: the gate keeps one frame in flight and only the newest waiting one.
    const burst = await Promise.all([1, 2, 3, 4].map((k) => send(streamer, 'frame', { seq: 10_000 + k, image: photos[k % photos.length] })));
    sent.frameEvents += burst.length;
    sent.superseded = burst.filter((ack) => !ack.ok && ack.error.code === 'frame_dropped').length;
    assert.ok(sent.superseded >= 1, 'the burst superseded frames');
    const invalid = await send(streamer, 'frame', { seq: 'one', image: 42 });
    assert.equal(invalid.ok, false);
    const undecodable = await send(streamer, 'frame', { seq: 20_000, image: Buffer.from('this is not a picture') });
    assert.equal(undecodable.ok, false);
    sent.frameEvents += 2;
    // The refused image first: every count then lands before the last processed frame (the image),
    // which the wait below keys on.
    const wrongType = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hello' });
    assert.equal(wrongType.status, 415);
    const image = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(photos[0]!) });
    assert.equal(image.status, 200);

    // Prometheus holds the final counts once a scrape after the traffic has landed.
    const expected = await processedLocally();
    await waitFor('Prometheus to scrape the final frame count', async () => {
      const result = await promQuery(prometheus!.url, 'sum(moodwire_frames_processed_total)');
      if (result.length !== 1 || sampleValue(result[0]!) !== expected) return false;
      evaluateAt = result[0]!.value[0];
      return true;
    }, 120_000);
  });

  test('every dashboard query returns data with a finite value', async () => {
    const queries = dashboardQueries(dashboard);
    const empty: string[] = [];
    for (const query of queries) {
      const promql = toPromQL(query.expr, dashboard, rateWindow());
      const result = await promQuery(prometheus!.url, promql, evaluateAt);
      if (!result.some((r) => Number.isFinite(sampleValue(r)))) empty.push(`${query.panel}/${query.refId}: ${promql} -> ${JSON.stringify(result)}`);
    }
    assert.deepEqual(empty, [], `queries without data:\n${empty.join('\n')}`);
  });

  test('the instance variable lists the scraped server', async () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'instance');
    assert.ok(variable);
    const definition = JSON.stringify(variable.query);
    const match = /label_values\((\w+), (\w+)\)/.exec(definition);
    assert.ok(match, definition);
    const res = await fetch(`${prometheus!.url}/api/v1/series?${new URLSearchParams({ 'match[]': match[1]! })}`);
    const body = (await res.json()) as { data: Array<Record<string, string>> };
    assert.deepEqual(body.data.map((series) => series[match[2]!]), [target]);
  });

  test('the numbers behind the panels match what happened', async (t) => {
    const run = async (expr: string): Promise<PromResult[]> => promQuery(prometheus!.url, toPromQL(expr, dashboard, rateWindow()), evaluateAt);
    const byLabel = (results: PromResult[], label: string): Map<string, number> =>
      new Map(results.map((r) => [r.metric[label] ?? '', sampleValue(r)]));

    // The dashboard's stage panels: live alone, and images/video by source, never mixed.
    const stagePanelQuery = (title: string, refId: string): string => {
      const query = dashboardQueries(dashboard).find((q) => q.panel === title && q.refId === refId);
      assert.ok(query, `panel ${title}/${refId}`);
      return query.expr;
    };
    const stageP95 = byLabel(await run(stagePanelQuery('Live stage latency p50 / p95 / p99', 'B')), 'stage');
    // The live path's stages (68 landmarks belong to face-api's detectors, used by single images and videos).
    for (const stage of ['decode', 'detect', 'track', 'align', 'classify', 'total']) {
      const seconds = stageP95.get(stage);
      assert.ok(seconds !== undefined && seconds > 0 && seconds <= 5, `p95 of ${stage}: ${seconds}`);
    }
    assert.equal(stageP95.get('landmarks'), undefined, 'no landmarks stage on the live panel (the image detector\'s stage stays out)');
    const otherStages = await run(stagePanelQuery('Image and video stage latency p50 / p95 / p99', 'B'));
    assert.ok(otherStages.length > 0 && otherStages.every((r) => r.metric.source === 'image'), `image stages by source: ${JSON.stringify(otherStages.map((r) => r.metric))}`);
    assert.ok(otherStages.some((r) => r.metric.stage === 'landmarks'), 'the image detector (tiny) adds its landmarks stage');
    t.diagnostic(`live frames answered: ${sent.live}; p95 by stage (ms): ${[...stageP95].map(([stage, s]) => `${stage} ${(s * 1000).toFixed(0)}`).join(', ')}`);
    const processed = byLabel(await run('sum by (source) (moodwire_frames_processed_total)'), 'source');
    assert.ok((processed.get('live') ?? 0) >= sent.live, `live frames scraped: ${processed.get('live')}, answered: ${sent.live}`);
    assert.equal(processed.get('image'), 2, 'the single images were counted as source="image"');
    assert.equal(processed.get('upload'), undefined, 'no source="upload" any more');
    // Received counts every frame that arrived, also the refused ones (not joined, invalid,
    // undecodable, superseded), each once.
    const received = byLabel(await run('sum by (source) (moodwire_frames_received_total)'), 'source');
    assert.equal(received.get('live'), sent.frameEvents, `live frames received: ${received.get('live')}, frame events sent: ${sent.frameEvents}`);
    assert.ok((received.get('live') ?? 0) > (processed.get('live') ?? 0), 'refused live frames are received but not processed');
    assert.equal(received.get('image'), 3, 'every image request (the refused one too) was received');
    assert.equal(received.get('video'), 0);
    const liveRate = await run('sum(rate(moodwire_frames_processed_total{source="live"}[$__rate_interval]))');
    assert.ok(sampleValue(liveRate[0]!) > 0, 'live frames per second above 0');

    const drops = byLabel(await run('sum by (reason) (increase(moodwire_frames_dropped_total[$__rate_interval]))'), 'reason');
    for (const reason of ['superseded', 'invalid', 'error']) assert.ok((drops.get(reason) ?? 0) > 0, `drops for ${reason}: ${drops.get(reason)}`);

    const errors = byLabel(await run('sum by (code) (increase(moodwire_errors_total[$__rate_interval]))'), 'code');
    for (const code of ['frame_dropped', 'invalid_payload', 'undecodable_image', 'unsupported_media_type']) {
      assert.ok((errors.get(code) ?? 0) > 0, `errors for ${code}: ${errors.get(code)}`);
    }

    const sockets = await run('sum(moodwire_connected_sockets)');
    assert.equal(sampleValue(sockets[0]!), 2);
    const sessions = await run('sum(moodwire_sessions)');
    assert.equal(sampleValue(sessions[0]!), 1);

    const batches = await run('sum(increase(moodwire_batch_size_count[$__rate_interval]))');
    assert.ok(sampleValue(batches[0]!) > 0, 'classifier batches ran');

    const model = await run('moodwire_model_info');
    assert.equal(model.length, 1);
    assert.ok(model[0]!.metric.model_version, 'model_version label');
    assert.ok(model[0]!.metric.backend, 'backend label');
  });
});
