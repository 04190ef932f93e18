/** Shared by the metrics tests: the Grafana dashboard's queries, and a real Prometheus process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../server/config.ts';
export { freePort } from './ports.ts';
import { freePort } from './ports.ts';

export const grafanaDir = path.join(repoRoot, 'grafana');
export const dashboardPath = path.join(grafanaDir, 'dashboards/moodwire.json');

export interface DashboardTarget {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
}
export interface TemplateVariable {
  name: string;
  type: string;
  query: unknown;
  allValue?: string;
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  templating: { list: TemplateVariable[] };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
}

export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

export function dashboardQueries(dashboard: Dashboard): PanelQuery[] {
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ panel: panel.title, refId: t.refId, expr: t.expr })));
}

/**
 * What Grafana would send to Prometheus: the rate window and every `$variable` replaced
 * (query variables by their "All" value, so they match every series).
 */
export function toPromQL(expr: string, dashboard: Dashboard, rateInterval = '30s'): string {
  let out = expr.replaceAll('$__rate_interval', rateInterval).replaceAll('$__interval', rateInterval);
  for (const variable of dashboard.templating.list) {
    if (variable.type === 'datasource') continue;
    out = out.replaceAll(`$${variable.name}`, variable.allValue ?? '.*').replaceAll(`\${${variable.name}}`, variable.allValue ?? '.*');
  }
  return out;
}


export interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

/** GET /api/v1/query (at `atSeconds`, Unix time, when given); throws on an error answer (a bad expression fails here, with its message). */
export async function promQuery(baseUrl: string, query: string, atSeconds?: number): Promise<PromResult[]> {
  const params = new URLSearchParams({ query });
  if (atSeconds !== undefined) params.set('time', atSeconds.toFixed(3));
  const url = `${baseUrl}/api/v1/query?${params}`;
  const body = (await (await fetch(url, { signal: AbortSignal.timeout(60_000) })).json()) as { status: string; error?: string; data?: { resultType: string; result: PromResult[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`query failed: ${query}: ${body.error ?? 'no data field'}`);
  if (body.data.resultType !== 'vector') throw new Error(`query ${query} answered a ${body.data.resultType}, not a vector`);
  return body.data.result;
}

export function sampleValue(result: PromResult): number {
  return Number(result.value[1]);
}

/** Polls until `check` resolves truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

export interface RunningPrometheus {
  url: string;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited */
  stop(): Promise<void>;
}

export const prometheusBinary = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

/** Starts the real Prometheus on a free loopback port with the given config file and storage dir. */
export async function startPrometheus(configFile: string, storageDir: string): Promise<RunningPrometheus> {
  const port = await freePort();
  const child = spawn(
    prometheusBinary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${storageDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(forced);
  };
  try {
    await waitFor(
      'Prometheus to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
        return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(5000) })).ok;
      },
      60_000,
    );
  } catch (error) {
    await stop();
    throw new Error(`${String(error)}\n${stderr}`);
  }
  return { url, process: child, stop };
}
