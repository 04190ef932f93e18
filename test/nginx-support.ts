/**
 * A real nginx for tests: deploy/nginx.conf.template (the file compose.yaml gives the nginx image)
 * rendered with local node addresses, inside a minimal main config that needs no privilege (a free
 * port, pid, logs and temp files in a temp folder), run in the foreground.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../server/config.ts';

export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const nginxTemplatePath = path.join(repoRoot, 'deploy/nginx.conf.template');

/**
 * Fills the template's ${UPPER_CASE} placeholders as the nginx image's envsubst step does, and
 * refuses a placeholder without a value (nginx's own $lower_case variables stay as they are).
 */
export function renderNginxTemplate(template: string, values: Record<string, string>): string {
  const missing = new Set<string>();
  const out = template.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) missing.add(name);
    return value ?? whole;
  });
  if (missing.size > 0) throw new Error(`no value for ${[...missing].join(', ')} in the nginx template`);
  return out;
}

export class TestNginx {
  readonly port: number;
  readonly #dir: string;
  readonly #child: ChildProcess;
  #stderr = '';

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.#dir = dir;
    this.#child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts nginx on `port` (127.0.0.1) in front of `upstreams` (host:port each) and waits until it accepts. */
  static async start(port: number, upstreams: string[]): Promise<TestNginx> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'moodwire-nginx-'));
    const site = renderNginxTemplate(readFileSync(nginxTemplatePath, 'utf8'), {
      MOODWIRE_UPSTREAM_SERVERS: upstreams.map((u) => `server ${u};`).join(' '),
      NGINX_LISTEN: `127.0.0.1:${port}`,
    });
    writeFileSync(path.join(dir, 'moodwire.conf'), site);
    const temp = path.join(dir, 'temp');
    mkdirSync(temp);
    // Run as root (CI), nginx's workers drop to nobody: they must be able to write the temp folder.
    const root = process.getuid?.() === 0;
    if (root) {
      chmodSync(dir, 0o755);
      chmodSync(temp, 0o777);
    }
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      [
        root ? 'user nobody nogroup;' : '',
        'worker_processes 1;',
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/error.log warn;`,
        'events { worker_connections 1024; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${temp}/body;`,
        `  proxy_temp_path ${temp}/proxy;`,
        `  fastcgi_temp_path ${temp}/fastcgi;`,
        `  uwsgi_temp_path ${temp}/uwsgi;`,
        `  scgi_temp_path ${temp}/scgi;`,
        `  include ${dir}/moodwire.conf;`,
        '}',
        '',
      ].join('\n'),
    );
    const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const nginx = new TestNginx(port, dir, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${nginx.#stderr}${nginx.errorLog()}`);
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return nginx;
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${nginx.#stderr}${nginx.errorLog()}`);
      await sleep(50);
    }
  }

  errorLog(): string {
    try {
      return readFileSync(path.join(this.#dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
