/**
 * The Grafana files have what provisioning needs: a dashboard JSON Grafana can load (uid, title,
 * schemaVersion, panels with unique ids and grid positions, every query bound to the datasource
 * variable, only known metrics), provisioning YAML pointing at the mounted paths, a Prometheus
 * config scraping the server, and a compose file that mounts all of it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { KNOWN_SOURCES, registry } from '../server/metrics/metrics.ts';
import { type Dashboard, dashboardQueries, grafanaDir, readDashboard } from './metrics-support.ts';

function readYaml(relative: string): Record<string, unknown> {
  const value: unknown = parse(readFileSync(path.join(grafanaDir, relative), 'utf8'));
  assert.ok(value && typeof value === 'object', `${relative} is a YAML mapping`);
  return value as Record<string, unknown>;
}

/** Metric names the server exports (histograms also as _bucket/_sum/_count). */
async function exportedSeriesNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

describe('Grafana dashboard JSON', () => {
  const dashboard: Dashboard = readDashboard();
  const datasourceVariable = dashboard.templating.list.find((v) => v.type === 'datasource');

  test('has the top-level fields provisioning needs', () => {
    assert.match(dashboard.uid, /^[A-Za-z0-9_-]{1,40}$/);
    assert.equal(dashboard.title, 'Moodwire');
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36, 'schemaVersion of Grafana 9+');
    assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length >= 15);
    assert.equal((dashboard as unknown as { id?: unknown }).id ?? null, null, 'no fixed numeric id (Grafana assigns it)');
  });

  test('declares a Prometheus datasource variable', () => {
    assert.ok(datasourceVariable, 'templating.list has a datasource-type variable');
    assert.equal(datasourceVariable.name, 'datasource');
    assert.equal(datasourceVariable.query, 'prometheus');
  });

  test('panels have unique ids and grid positions inside the 24-column grid', () => {
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of dashboard.panels) {
      assert.ok(Number.isInteger(panel.id) && panel.id > 0, `${panel.title}: positive integer id`);
      assert.ok(panel.title, `panel ${panel.id} has a title`);
      const { x, y, w, h } = panel.gridPos;
      assert.ok([x, y, w, h].every(Number.isInteger), `${panel.title}: integer gridPos`);
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, `${panel.title}: gridPos inside the grid`);
    }
  });

  test('every query names the datasource variable and only metrics the server exports', async () => {
    const exported = await exportedSeriesNames();
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 30, `many queries (${queries.length})`);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.ok(panel.targets && panel.targets.length > 0, `${panel.title}: has targets`);
      assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: panel datasource is the variable`);
      const refIds = panel.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${panel.title}: unique refIds`);
      for (const target of panel.targets) {
        assert.ok(target.expr.trim(), `${panel.title}/${target.refId}: has an expr`);
        assert.deepEqual(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `${panel.title}/${target.refId}: datasource is the variable`);
        const metrics = target.expr.match(/\bmoodwire_[a-z0-9_]+/g) ?? [];
        assert.ok(metrics.length > 0, `${panel.title}/${target.refId}: queries a moodwire_ metric`);
        for (const name of metrics) assert.ok(exported.has(name), `${panel.title}/${target.refId}: ${name} is exported by the server`);
        if (/\b(rate|increase)\(/.test(target.expr)) assert.match(target.expr, /\[\$__rate_interval\]/, `${panel.title}/${target.refId}: uses $__rate_interval`);
      }
    }
  });

  test('covers every stage, the issue’s panels and every server metric', () => {
    const exprs = dashboardQueries(dashboard).map((q) => q.expr).join('\n');
    for (const quantile of ['0.5', '0.95', '0.99']) {
      assert.ok(exprs.includes(`histogram_quantile(${quantile}, sum by (le, stage) (rate(moodwire_stage_duration_seconds_bucket{source="live", `), `live stage p${quantile}`);
      assert.ok(exprs.includes(`histogram_quantile(${quantile}, sum by (le, source, stage) (rate(moodwire_stage_duration_seconds_bucket{source!="live", `), `image/video stage p${quantile}`);
    }
    const ownMetrics = [
      'moodwire_stage_duration_seconds', 'moodwire_frame_latency_seconds', 'moodwire_batch_size', 'moodwire_batch_queue_wait_seconds',
      'moodwire_frames_received_total', 'moodwire_frames_processed_total', 'moodwire_frames_dropped_total', 'moodwire_faces_classified_total',
      'moodwire_errors_total', 'moodwire_video_jobs_total', 'moodwire_connected_sockets', 'moodwire_sessions', 'moodwire_queue_depth',
      'moodwire_video_jobs_running', 'moodwire_tf_tensors', 'moodwire_model_info', 'moodwire_process_cpu_seconds_total',
      'moodwire_process_resident_memory_bytes', 'moodwire_nodejs_heap_size_used_bytes', 'moodwire_nodejs_eventloop_lag_p99_seconds',
      'moodwire_video_jobs_waiting', 'moodwire_video_jobs_active', 'moodwire_redis_up', 'moodwire_node_info',
    ];
    for (const name of ownMetrics) assert.ok(exprs.includes(name), `the dashboard shows ${name}`);
    assert.ok(dashboard.panels.some((p) => p.type === 'heatmap' && p.targets?.some((t) => t.expr.includes('moodwire_batch_size_bucket'))), 'batch size heatmap');
  });

  test('the live latency panel shows live frames only', () => {
    const panel = dashboard.panels.find((p) => p.title === 'Live frame latency p95');
    assert.ok(panel?.targets?.length === 1, 'one query');
    assert.match(panel.targets[0]!.expr, /moodwire_frame_latency_seconds_bucket\{source="live", instance=~"\$instance"\}/);
  });

  test('no stage query mixes the paths: each filters one source or keeps source apart', () => {
    const stageQueries = dashboardQueries(dashboard).filter((q) => q.expr.includes('moodwire_stage_duration_seconds'));
    assert.ok(stageQueries.length >= 7, `stage queries: ${stageQueries.length}`);
    for (const query of stageQueries) {
      const filtersLive = /moodwire_stage_duration_seconds_\w+\{source="live"/.test(query.expr);
      const groupsBySource = [...query.expr.matchAll(/\bby \(([^)]*)\)/g)].every((m) => m[1]!.split(',').map((l) => l.trim()).includes('source'));
      assert.ok(filtersLive || groupsBySource, `${query.panel}/${query.refId}: ${query.expr}`);
    }
    for (const panel of dashboard.panels.filter((p) => p.targets?.some((t) => t.expr.includes('moodwire_stage_duration_seconds') && !t.expr.includes('source="live"')))) {
      for (const target of panel.targets!) {
        assert.ok(target.legendFormat?.includes('{{source}}') && target.legendFormat.includes('{{stage}}'), `${panel.title}/${target.refId}: legend names source and stage`);
      }
    }
  });

  test('a per-node view: panels by instance named with moodwire_node_info’s node_id, Redis health per node', () => {
    const row = dashboard.panels.find((p) => p.type === 'row' && p.title === 'Nodes');
    assert.ok(row, 'a Nodes row');
    const below = dashboard.panels.filter((p) => p.type !== 'row' && p.gridPos.y > row.gridPos.y);
    const perNode = below.filter((p) => p.targets?.every((t) => /by \((le, )?instance\)/.test(t.expr) && t.expr.includes('group_left (node_id) max by (instance, node_id) (moodwire_node_info)')));
    const titles = perNode.map((p) => p.title);
    for (const title of ['Frames analysed / s per node', 'Live frame latency p95 per node', 'Sockets per node', 'CPU per node', 'Memory per node']) {
      assert.ok(titles.includes(title), `${title} is split by node and labelled with node_id (${titles})`);
    }
    for (const panel of perNode) for (const t of panel.targets!) assert.equal(t.legendFormat, '{{node_id}}', `${panel.title}: legend is the node`);
    const table = below.find((p) => p.title === 'Nodes');
    assert.match(table?.targets?.[0]?.expr ?? '', /max by \(instance, node_id, cluster\) \(moodwire_node_info\{instance=~"\$instance"\}\)/);
    // Redis: up (1) / down (0) per node; a node without REDIS_URL shows -1 ("no Redis") instead of no data.
    const redis = below.filter((p) => p.targets?.some((t) => t.expr.includes('moodwire_redis_up')));
    assert.ok(redis.some((p) => p.type === 'stat') && redis.some((p) => p.type === 'timeseries'), 'Redis health as a stat and over time');
    for (const panel of redis) {
      assert.match(panel.targets![0]!.expr, /^max by \(instance, node_id\) \(moodwire_redis_up\{instance=~"\$instance"\}\) or -1 \* max by \(instance, node_id\) \(moodwire_node_info\{cluster="off", instance=~"\$instance"\}\)$/);
    }
    // With Redis every node reports the cluster's session count: the panels take the max, never the sum.
    assert.ok(!dashboardQueries(dashboard).some((q) => /sum[^(]*\(moodwire_sessions/.test(q.expr)), 'sessions are not summed over nodes');
  });

  test('the video queue: BullMQ\'s cluster-wide counts (max over nodes), the node\'s own queue without REDIS_URL', () => {
    const panel = dashboard.panels.find((p) => p.title === 'Video jobs waiting and active');
    assert.ok(panel?.targets?.length === 2, 'waiting and active');
    const [waiting, active] = panel.targets;
    assert.equal(waiting!.expr, 'max(moodwire_video_jobs_waiting{instance=~"$instance"}) or sum(moodwire_queue_depth{queue="video_jobs", instance=~"$instance"})');
    assert.equal(active!.expr, 'max(moodwire_video_jobs_active{instance=~"$instance"}) or sum(moodwire_video_jobs_running{instance=~"$instance"})');
    // Every node reports the same BullMQ counts: summing them would multiply the queue by the nodes.
    assert.ok(!dashboardQueries(dashboard).some((q) => /sum[^(]*\(moodwire_video_jobs_(waiting|active)/.test(q.expr)), 'queue counts are not summed over nodes');
  });

  test('source label values are those the server records (image, not upload)', () => {
    const json = JSON.stringify(dashboard);
    const values = [...json.matchAll(/source!?=~?\\"([^\\]*)\\"/g)].flatMap((m) => m[1]!.split('|'));
    assert.ok(values.length > 0);
    for (const value of values) assert.ok((KNOWN_SOURCES as readonly string[]).includes(value), `source="${value}" is a source the server records`);
    assert.deepEqual([...KNOWN_SOURCES], ['live', 'image', 'video']);
  });
});

describe('provisioning, Prometheus and compose files', () => {
  test('the datasource provisioning defines the Prometheus of the compose file', () => {
    const file = readYaml('provisioning/datasources/prometheus.yml');
    assert.equal(file.apiVersion, 1);
    const sources = file.datasources as Array<Record<string, unknown>>;
    assert.equal(sources.length, 1);
    const [source] = sources;
    assert.equal(source?.type, 'prometheus');
    assert.equal(source?.access, 'proxy');
    assert.equal(source?.url, 'http://prometheus:9090');
    assert.equal(source?.isDefault, true);
  });

  test('the dashboard provider reads the folder where compose mounts the dashboards', () => {
    const file = readYaml('provisioning/dashboards/moodwire.yml');
    assert.equal(file.apiVersion, 1);
    const providers = file.providers as Array<{ type: string; options: { path: string } }>;
    assert.equal(providers.length, 1);
    assert.equal(providers[0]?.type, 'file');
    assert.equal(providers[0]?.options.path, '/etc/grafana/dashboards');
  });

  test('prometheus.yml scrapes the server /metrics', () => {
    const file = readYaml('prometheus.yml');
    const jobs = file.scrape_configs as Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    const job = jobs.find((j) => j.job_name === 'moodwire');
    assert.ok(job, 'a moodwire scrape job');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(job.static_configs[0]?.targets, ['host.docker.internal:3000']);
  });

  test('docker-compose.yml starts Prometheus and Grafana with every file mounted', () => {
    const compose = readYaml('docker-compose.yml');
    const services = compose.services as Record<string, { image: string; volumes: string[]; ports: string[]; extra_hosts?: string[] }>;
    const prometheus = services.prometheus;
    const grafana = services.grafana;
    assert.ok(prometheus && grafana, 'both services');
    assert.match(prometheus.image, /^prom\/prometheus:/);
    assert.match(grafana.image, /^grafana\/grafana:/);
    assert.ok(prometheus.volumes.some((v) => v.startsWith('./prometheus.yml:/etc/prometheus/prometheus.yml')));
    assert.ok(prometheus.extra_hosts?.includes('host.docker.internal:host-gateway'), 'host.docker.internal works on Linux');
    const mounts = new Map(grafana.volumes.map((v) => [v.split(':')[0], v.split(':')[1]]));
    assert.equal(mounts.get('./provisioning/datasources'), '/etc/grafana/provisioning/datasources');
    assert.equal(mounts.get('./provisioning/dashboards'), '/etc/grafana/provisioning/dashboards');
    assert.equal(mounts.get('./dashboards'), '/etc/grafana/dashboards');
    for (const hostPath of [...mounts.keys(), './prometheus.yml']) {
      if (hostPath?.startsWith('./')) assert.ok(existsSync(path.join(grafanaDir, hostPath)), `${hostPath} exists in grafana/`);
    }
  });
});
