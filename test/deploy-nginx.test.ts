/**
 * The deployment's load balancer, for real: one redis-server, two server nodes on it (REDIS_URL,
 * NODE_ID node-a / node-b, one API key, compose.yaml's TRUST_PROXY) and a real nginx
 * (Debian package `nginx`) started unprivileged on a free port with deploy/nginx.conf.template,
 * the file compose.yaml gives the nginx image, rendered with the two nodes' addresses.
 * Through nginx:
 *  - WebSocket clients (new sessions, least_conn) land on both nodes (each node's own socket.io
 *    server counts one), join one session and receive each other's `emotions`;
 *  - a polling client (socket.io's fallback; sticky by address) joins the same session, sends
 *    frames (every poll reaches its node) and gets the WebSocket clients' emotions;
 *  - POST /api/v1/analyze and a video upload, its status and its deletion work;
 *  - the client address the nodes count is the one nginx saw (clients bound to 127.0.0.2 and
 *    127.0.0.3): MAX_SESSIONS_PER_ADDRESS=1 refuses a second session of 127.0.0.2 on either node,
 *    a spoofed X-Forwarded-For does not get around it, and 127.0.0.3 is counted apart.
 * Also static checks that compose.yaml, the Dockerfile and deploy/prometheus.yml agree with each
 * other, and `promtool check config` on both Prometheus files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { EmotionsEvent, FrameResult, JoinResult } from '../contract/socket.ts';
import { repoRoot } from '../server/config.ts';
import type { RunningServer } from '../server/server.ts';
import { type TestClient, connectClient, mediaDir, readPhoto, request, startTestServer } from './live-support.ts';
import { freePort } from './metrics-support.ts';
import { TestNginx, nginxTemplatePath } from './nginx-support.ts';
import { TestRedis } from './redis-support.ts';

const KEY = 'deploy-test-key-0123456789';

interface ComposeService { image?: string; build?: unknown; environment?: Record<string, string>; env_file?: unknown; volumes?: string[]; command?: unknown }
const compose = parse(readFileSync(path.join(repoRoot, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const nodeNames = Object.keys(compose.services).filter((name) => compose.services[name]!.environment?.NODE_ID !== undefined);
/** compose.yaml's TRUST_PROXY for the nodes (one hop: nginx), used by the test's nodes too. */
const COMPOSE_TRUST_PROXY = compose.services[nodeNames[0] ?? '']?.environment?.TRUST_PROXY ?? 'missing';
const PROMTOOL = process.env.PROMTOOL_BIN ?? 'promtool';

interface Opened {
  socket: TestClient;
  node?: string;
}

/** A socket.io client through the load balancer, from `localAddress` (a loopback address) when given. */
function open(url: string, transport: 'websocket' | 'polling', options: { localAddress?: string; headers?: Record<string, string> } = {}): Promise<TestClient> {
  return connectClient(url, { transport, token: KEY, ...options });
}

/** The next `emotions` from `participantId`, or a rejection after `ms`. */
function nextEmotions(socket: TestClient, participantId: string, ms = 20_000): Promise<EmotionsEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('emotions', listener);
      reject(new Error(`no emotions from ${participantId} within ${ms} ms`));
    }, ms);
    const listener = (event: EmotionsEvent): void => {
      if (event.participantId !== participantId) return;
      clearTimeout(timer);
      socket.off('emotions', listener);
      resolve(event);
    };
    socket.on('emotions', listener);
  });
}

/** Sockets connected to this node (its own socket.io server: in-process nodes share one metrics registry). */
async function connectedSockets(server: RunningServer): Promise<number> {
  return server.io.of('/').sockets.size;
}

describe('nginx in front of two nodes (deploy/nginx.conf.template)', { timeout: 180_000 }, () => {
  let redis: TestRedis;
  const nodes: RunningServer[] = [];
  let nginx: TestNginx;
  const sockets: TestClient[] = [];
  const image = readPhoto('group1.jpg');

  before(async () => {
    redis = await TestRedis.start();
    const env = (nodeId: string) => ({
      REDIS_URL: redis.url,
      NODE_ID: nodeId,
      MOODWIRE_API_KEYS: KEY,
      // compose.yaml's setting (one hop, nginx): the address nginx appends to X-Forwarded-For is
      // the client's, so clients bound to other loopback addresses are counted as themselves,
      // whatever X-Forwarded-For they send.
      TRUST_PROXY: COMPOSE_TRUST_PROXY,
      MAX_SESSIONS_PER_ADDRESS: '1',
      WORKERS: '1',
      CLUSTER_HEARTBEAT_MS: '500',
    });
    nodes.push(...(await Promise.all([startTestServer(env('node-a')), startTestServer(env('node-b'))])));
    await Promise.all(nodes.map((n) => n.ready));
    nginx = await TestNginx.start(await freePort(), nodes.map((n) => new URL(n.url).host));
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    await nginx?.stop();
    await Promise.all(nodes.map((n) => n.close()));
    await redis?.stop();
  });

  it('/readyz through nginx answers from a node of the cluster', async () => {
    const res = await fetch(`${nginx.url}/readyz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { nodeId?: string; cluster?: string };
    assert.ok(body.nodeId === 'node-a' || body.nodeId === 'node-b', JSON.stringify(body));
  });

  it('WebSocket clients land on both nodes, share a session and see each other’s emotions; a polling client joins them', async () => {
    // Each new WebSocket goes to the node with fewer connections: find one client on each node.
    const byNode = new Map<number, TestClient>();
    for (let attempt = 0; attempt < 4 && byNode.size < 2; attempt++) {
      const before = await Promise.all(nodes.map(connectedSockets));
      const socket = await open(nginx.url, 'websocket');
      sockets.push(socket);
      const afterOpen = await Promise.all(nodes.map(connectedSockets));
      const node = afterOpen.findIndex((n, i) => n === before[i]! + 1);
      assert.ok(node >= 0, `the socket is counted on a node: ${before} -> ${afterOpen}`);
      if (!byNode.has(node)) byNode.set(node, socket);
    }
    assert.equal(byNode.size, 2, 'WebSocket clients through nginx land on both nodes');
    const ann = byNode.get(0)!;
    const ben = byNode.get(1)!;

    const annJoin = await request<JoinResult>(ann, 'session:join', { sessionId: 'lb', name: 'Ann (node-a)' });
    assert.ok(annJoin.ok, JSON.stringify(annJoin));
    const benJoin = await request<JoinResult>(ben, 'session:join', { sessionId: 'lb', name: 'Ben (node-b)' });
    assert.ok(benJoin.ok, JSON.stringify(benJoin));
    assert.deepEqual(benJoin.participants.map((p) => p.participantId), [annJoin.participantId], 'B lists the participant on A');

    for (const [from, fromJoin, to] of [[ann, annJoin, ben], [ben, benJoin, ann]] as const) {
      const relayed = nextEmotions(to, fromJoin.participantId);
      const frame = await request<FrameResult>(from, 'frame', { seq: 1, ts: 1_000, image });
      assert.ok(frame.ok && frame.faces.length > 0, JSON.stringify(frame).slice(0, 300));
      const emotions = await relayed;
      assert.deepEqual(emotions.faces.map((f) => f.trackId), frame.faces.map((f) => f.trackId), 'the other node relays the faces answered');
    }

    // socket.io's polling fallback: many HTTP requests per session, each must reach the same node.
    const polling = await open(nginx.url, 'polling');
    sockets.push(polling);
    assert.equal(polling.io.engine.transport.name, 'polling');
    const pollJoin = await request<JoinResult>(polling, 'session:join', { sessionId: 'lb', name: 'Pat (polling)' });
    assert.ok(pollJoin.ok, JSON.stringify(pollJoin));
    assert.equal(pollJoin.participants.length, 2, 'the polling client sees both WebSocket participants');
    const fromAnn = nextEmotions(polling, annJoin.participantId);
    assert.ok((await request<FrameResult>(ann, 'frame', { seq: 2, ts: 2_000, image })).ok);
    await fromAnn;
    for (let seq = 1; seq <= 3; seq++) {
      const toBen = nextEmotions(ben, pollJoin.participantId);
      const frame = await request<FrameResult>(polling, 'frame', { seq, ts: seq * 1_000, image });
      assert.ok(frame.ok, JSON.stringify(frame).slice(0, 300));
      await toBen;
    }
    assert.ok(polling.connected, 'the polling session is still open');
  });

  it('HTTP through nginx: an image analysed, a video uploaded, read and deleted', async () => {
    const auth = { Authorization: `Bearer ${KEY}` };
    const analyzed = await fetch(`${nginx.url}/api/v1/analyze`, { method: 'POST', headers: { ...auth, 'Content-Type': 'image/jpeg' }, body: new Uint8Array(image) });
    assert.equal(analyzed.status, 200);
    const result = (await analyzed.json()) as { faces: unknown[] };
    assert.ok(result.faces.length > 0);

    const form = new FormData();
    form.set('video', new Blob([readFileSync(path.join(mediaDir, 'one-face.mp4'))], { type: 'video/mp4' }), 'one-face.mp4');
    const uploaded = await fetch(`${nginx.url}/api/v1/videos?fps=1`, { method: 'POST', headers: auth, body: form });
    assert.equal(uploaded.status, 202, await uploaded.clone().text());
    const { id } = (await uploaded.json()) as { id: string };
    // Same client address, same node (HTTP is sticky): the job is found there.
    const status = await fetch(`${nginx.url}/api/v1/videos/${id}`, { headers: auth });
    assert.equal(status.status, 200, await status.clone().text());
    assert.equal(((await status.json()) as { id: string }).id, id);
    const deleted = await fetch(`${nginx.url}/api/v1/videos/${id}`, { method: 'DELETE', headers: auth });
    assert.ok(deleted.status === 200 || deleted.status === 204, `DELETE answered ${deleted.status}`);
  });

  it('the nodes count the address nginx saw (X-Forwarded-For), not nginx’s, across both nodes', async () => {
    const join = async (localAddress: string, sessionId: string, headers?: Record<string, string>) => {
      const socket = await open(nginx.url, 'websocket', { localAddress, ...(headers ? { headers } : {}) });
      sockets.push(socket);
      return request<JoinResult>(socket, 'session:join', { sessionId });
    };
    // 127.0.0.1 (the earlier test's clients) already created "lb": were every client counted as
    // nginx's 127.0.0.1, this first session of 127.0.0.2 would be refused.
    const first = await join('127.0.0.2', 'xff-1');
    assert.ok(first.ok, JSON.stringify(first));
    // Two more tries, so that at least one lands on the other node (least_conn spreads them).
    for (const sessionId of ['xff-2', 'xff-3']) {
      const again = await join('127.0.0.2', sessionId);
      assert.ok(!again.ok && again.error.code === 'rate_limited', `a second session of 127.0.0.2: ${JSON.stringify(again)}`);
    }
    const spoofed = await join('127.0.0.2', 'xff-4', { 'X-Forwarded-For': '198.51.100.7' });
    assert.ok(!spoofed.ok && spoofed.error.code === 'rate_limited', `a spoofed X-Forwarded-For is not believed: ${JSON.stringify(spoofed)}`);
    const other = await join('127.0.0.3', 'xff-2');
    assert.ok(other.ok, `another client address is counted apart: ${JSON.stringify(other)}`);

    // Plain HTTP too: protected mode and per-address limits see the same address (no keys needed
    // for /readyz; an API call with the key from 127.0.0.2 is served).
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${nginx.url}/api/v1/videos`, { localAddress: '127.0.0.2', headers: { Authorization: `Bearer ${KEY}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      req.end();
    });
    assert.equal(status, 200);
  });
});

describe('compose.yaml, Dockerfile and Prometheus files agree', () => {
  const services = compose.services;

  it('two Moodwire nodes on one Redis, distinct NODE_ID, one upload volume, keys from an env file', () => {
    assert.equal(nodeNames.length, 2, `nodes: ${nodeNames}`);
    const envs = nodeNames.map((n) => services[n]!.environment!);
    assert.equal(new Set(envs.map((e) => e.NODE_ID)).size, 2, 'distinct NODE_ID');
    assert.equal(new Set(envs.map((e) => e.REDIS_URL)).size, 1, 'one REDIS_URL');
    assert.match(envs[0]!.REDIS_URL!, /^redis:\/\/redis:6379/);
    assert.ok(services.redis, 'a redis service');
    for (const [i, name] of nodeNames.entries()) {
      const env = envs[i]!;
      assert.equal(env.HOST, '0.0.0.0');
      assert.equal(env.TRUST_PROXY, '1', `${name}: TRUST_PROXY trusts one hop, nginx (the load-balancer test runs with it)`);
      assert.ok(env.METRICS_PORT, `${name}: METRICS_PORT for Prometheus`);
      assert.ok(JSON.stringify(services[name]!.env_file).includes('deploy/moodwire.env'), `${name}: API keys from deploy/moodwire.env`);
      const upload = services[name]!.volumes?.find((v) => v.endsWith(`:${env.VIDEO_UPLOAD_DIR}`));
      assert.ok(upload, `${name}: a volume at VIDEO_UPLOAD_DIR`);
      assert.equal(upload.split(':')[0], services[nodeNames[0]!]!.volumes!.find((v) => v.endsWith(`:${env.VIDEO_UPLOAD_DIR}`))!.split(':')[0], 'the same upload volume');
    }
    const example = readFileSync(path.join(repoRoot, 'deploy/moodwire.env.example'), 'utf8');
    assert.match(example, /^MOODWIRE_API_KEYS=/m);
  });

  it('nginx gets the template and a value for each of its placeholders; upstreams are the nodes', () => {
    const nginx = services.nginx!;
    assert.ok(nginx.volumes?.includes('./deploy/nginx.conf.template:/etc/nginx/templates/default.conf.template:ro'));
    const placeholders = [...new Set([...readFileSync(nginxTemplatePath, 'utf8').matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g)].map((m) => m[1]!))].sort();
    assert.deepEqual(Object.keys(nginx.environment ?? {}).filter((k) => placeholders.includes(k)).sort(), placeholders);
    const upstreams = [...nginx.environment!.MOODWIRE_UPSTREAM_SERVERS!.matchAll(/server ([\w-]+):(\d+);/g)].map((m) => `${m[1]}:${m[2]}`);
    assert.deepEqual(upstreams.sort(), nodeNames.map((n) => `${n}:${services[n]!.environment!.PORT ?? '3000'}`).sort());
  });

  it('Prometheus scrapes every node’s METRICS_PORT; Grafana gets the dashboards', () => {
    const prom = parse(readFileSync(path.join(repoRoot, 'deploy/prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    const job = prom.scrape_configs.find((j) => j.job_name === 'moodwire');
    assert.ok(job);
    const targets = job.static_configs.flatMap((s) => s.targets).sort();
    assert.deepEqual(targets, nodeNames.map((n) => `${n}:${services[n]!.environment!.METRICS_PORT}`).sort());
    assert.ok(services.prometheus?.volumes?.some((v) => v.startsWith('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml')));
    const grafana = services.grafana!;
    for (const mount of ['./grafana/dashboards:/etc/grafana/dashboards', './grafana/provisioning/datasources:/etc/grafana/provisioning/datasources']) {
      assert.ok(grafana.volumes?.some((v) => v.startsWith(mount)), mount);
    }
  });

  it('the Dockerfile runs node (not npm) as PID 1, as a non-root user, with ffmpeg and a data volume', () => {
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:20-bookworm/m);
    assert.match(dockerfile, /apt-get install[^\n]*ffmpeg/);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /npm run build:client/);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^VOLUME \["\/data"/m);
    assert.match(dockerfile, /^CMD \["node", "--import", "tsx", "server\/main\.ts"\]$/m);
    assert.doesNotMatch(dockerfile, /^(CMD|ENTRYPOINT) .*npm/m);
    const ignore = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', '.git', 'data', 'deploy/moodwire.env']) assert.ok(ignore.includes(entry), `.dockerignore has ${entry}`);
  });

  it('promtool check config accepts deploy/prometheus.yml and grafana/prometheus.yml', () => {
    for (const file of ['deploy/prometheus.yml', 'grafana/prometheus.yml']) {
      const out = execFileSync(PROMTOOL, ['check', 'config', path.join(repoRoot, file)], { encoding: 'utf8' });
      assert.match(out, /SUCCESS/, `${file}: ${out}`);
    }
  });
});
