/**
 * Builds the browser client: bundles client/src/{live,upload}/main.ts (with socket.io-client and
 * chart.js) into client/dist/{live,upload}.js and copies client/public/ next to them.
 * Usage: tsx scripts/build-client.ts [--dev]   (--dev: no minification)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const clientDir = path.join(repoRoot, 'client');
const outDir = path.join(clientDir, 'dist');
const dev = process.argv.includes('--dev');

const started = performance.now();
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
fs.cpSync(path.join(clientDir, 'public'), outDir, { recursive: true });

const result = await build({
  entryPoints: { live: path.join(clientDir, 'src/live/main.ts'), upload: path.join(clientDir, 'src/upload/main.ts') },
  outdir: outDir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: !dev,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
});

const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, out]) => `${path.basename(file)} ${(out.bytes / 1024).toFixed(0)} KiB`);
console.log(`client built in ${Math.round(performance.now() - started)} ms -> ${path.relative(repoRoot, outDir)}/ (${sizes.join(', ')})`);
