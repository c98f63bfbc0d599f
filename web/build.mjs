// Bundles the web console into ../gateway/web/dist/app, which rr-gateway
// embeds (go:embed). Run by make build after npm ci; nothing is fetched at
// run time.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';

const out = new URL('../gateway/web/dist/app/', import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: ['src/app.js', 'src/app.css'],
  bundle: true,
  minify: true,
  sourcemap: false,
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: out,
  logLevel: 'warning',
});
cpSync('src/index.html', out + 'index.html');
