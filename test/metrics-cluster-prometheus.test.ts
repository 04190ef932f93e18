/**
 * With REDIS_URL a real Prometheus scrapes a NODE_ROLE=api node (in this process, on a real
 * redis-server), and the dashboard's video queue panel answers BullMQ's cluster-wide counts: jobs
 * uploaded to the api node wait (no node runs jobs), then a worker node process takes one (active
 * 1, waiting 1 less) although the scraped node runs none. The single-node side of the same
 * queries is checked by metrics-prometheus.test.ts. Needs /usr/bin/prometheus and redis-server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../server/server.ts';
import { isAlive, type NodeProcess, spawnNode, upload, waitReady } from './cluster-support.ts';
import { startTestServer } from './live-support.ts';
import { dashboardQueries, promQuery, readDashboard, type RunningPrometheus, sampleValue, startPrometheus, toPromQL, waitFor } from './metrics-support.ts';
import { TestRedis } from './redis-support.ts';
import { makeGrayVideo } from './video-support.ts';

describe('the video queue panel with REDIS_URL, through a real Prometheus', { timeout: 120_000 }, () => {
  const dashboard = readDashboard();
  let redis: TestRedis;
  let api: RunningServer;
  let worker: NodeProcess | undefined;
  let prometheus: RunningPrometheus | undefined;
  let dir: string;
  let env: Record<string, string>;

  /** The panel's query by refId, run now: its one value. */
  const panelValue = async (title: string, refId: string): Promise<number | undefined> => {
    const query = dashboardQueries(dashboard).find((q) => q.panel === title && q.refId === refId);
    assert.ok(query, `${title}/${refId} on the dashboard`);
    const result = await promQuery(prometheus!.url, toPromQL(query.expr, dashboard));
    return result.length === 1 ? sampleValue(result[0]!) : undefined;
  };
  const queueIs = async (waiting: number, active: number): Promise<boolean> =>
    (await panelValue('Video jobs waiting and active', 'A')) === waiting && (await panelValue('Video jobs waiting and active', 'B')) === active;

  before(async () => {
    redis = await TestRedis.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-queue-metrics-'));
    env = { REDIS_URL: redis.url, VIDEO_UPLOAD_DIR: path.join(dir, 'uploads') };
    api = await startTestServer({ ...env, NODE_ROLE: 'api', NODE_ID: 'api-q', WORKERS: '1' });
    await api.ready;
    const configFile = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      configFile,
      ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: moodwire', '    static_configs:', `      - targets: ['${new URL(api.url).host}']`, ''].join('\n'),
    );
    prometheus = await startPrometheus(configFile, path.join(dir, 'prometheus-data'));
  });

  after(async () => {
    if (worker && isAlive(worker)) worker.child.kill('SIGKILL');
    await prometheus?.stop();
    await api?.close();
    await redis?.stop();
    if (worker) fs.rmSync(worker.dataDir, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the jobs waiting on the api node, then the one a worker node runs, from BullMQ', async () => {
    const video = makeGrayVideo(path.join(dir, 'clip.mp4'), 20, 2);
    await waitFor('the empty queue scraped', () => queueIs(0, 0), 30_000);
    for (let i = 0; i < 3; i += 1) await upload(api.url, video, 2);
    // No node runs jobs yet: all three wait (the api node's own queue depth, the fallback without REDIS_URL, stays 0).
    await waitFor('3 waiting, 0 active', () => queueIs(3, 0), 30_000);
    worker = await spawnNode('worker-q', { ...env, NODE_ROLE: 'worker' });
    await waitReady(worker, Date.now() + 60_000);
    // VIDEO_JOB_CONCURRENCY=1: one runs on the worker, the scraped api node still reports it.
    await waitFor('2 waiting, 1 active', () => queueIs(2, 1), 30_000);
    const perNode = dashboardQueries(dashboard).find((q) => q.panel === 'Video jobs running per node');
    assert.ok(perNode);
    const running = await promQuery(prometheus!.url, toPromQL(perNode.expr, dashboard));
    assert.deepEqual(running.map((r) => [r.metric.node_id, sampleValue(r)]), [['api-q', 0]], 'the api node runs none itself');
  });
});
