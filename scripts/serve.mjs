// A dependency-free static file server for the repository root, for the
// browser tests and the demo page: the package, its wasm and the models by
// URL, with the Range, validator and cross-origin-isolation headers that a
// browser's model loading relies on.
//
//   node scripts/serve.mjs [--port N] [--host H] [--no-isolation]
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
};

/**
 * Serves the files under `root` (default: the repository root) and resolves
 * to `{ url, close() }`. `isolated` adds COOP/COEP so that pages are
 * `crossOriginIsolated`, which the threaded wasm build needs for
 * SharedArrayBuffer. `csp`: a Content-Security-Policy for every response.
 * For the tests of downloads cut short: `throttle` sends GGUF files at that
 * many bytes a second, unstored (`no-store`: else the browser's HTTP cache
 * would answer part of a range), and the server's `sent` counts the GGUF
 * bytes sent and `ranges` lists the Range headers of their requests.
 */
export async function serve({ root = repoRoot, port = 0, host = '127.0.0.1', isolated = true, csp, throttle } = {}) {
  const base = resolve(root);
  const log = { sent: 0, ranges: [] };
  const server = createServer((req, res) => {
    handle(base, { isolated, csp, throttle, log }, req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': TYPES['.txt'] });
      res.end(`${e.message}\n`);
    });
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const address = server.address();
  const name = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${name}:${address.port}`,
    get sent() {
      return log.sent;
    },
    ranges: log.ranges,
    close() {
      // Browsers keep connections alive; without this close() would wait for them.
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

async function handle(base, { isolated, csp, throttle, log }, req, res) {
  const common = { 'cache-control': 'no-cache' };
  if (csp) common['content-security-policy'] = csp;
  if (isolated) {
    common['cross-origin-opener-policy'] = 'same-origin';
    common['cross-origin-embedder-policy'] = 'require-corp';
  }
  const fail = (status, text, extra = {}) => {
    res.writeHead(status, { ...common, 'content-type': TYPES['.txt'], ...extra });
    res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed', { allow: 'GET, HEAD' });

  const pathname = new URL(req.url, 'http://localhost').pathname;
  let relative;
  try {
    relative = decodeURIComponent(pathname);
  } catch {
    return fail(400, 'bad path');
  }
  // Checked on the path itself, not its real path: the repository's own
  // symlinks (models/) may point outside it, but a URL never leaves the root.
  const file = join(base, relative);
  if (relative.includes('\0') || (file !== base && !file.startsWith(base + sep))) return fail(403, 'forbidden');

  let info = await stat(file).catch(() => null);
  let path = file;
  if (info?.isDirectory()) {
    if (!pathname.endsWith('/')) {
      res.writeHead(301, { ...common, location: `${pathname}/` });
      return res.end();
    }
    path = join(file, 'index.html');
    info = await stat(path).catch(() => null);
  }
  if (!info?.isFile()) return fail(404, 'not found');

  const size = info.size;
  const etag = `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const lastModified = info.mtime.toUTCString();
  const gguf = extname(path) === '.gguf';
  const headers = {
    ...common,
    ...(gguf && throttle ? { 'cache-control': 'no-store' } : {}),
    'content-type': TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag,
    'last-modified': lastModified,
  };
  // A service worker may control only the folder of its script unless this
  // widens it: the demo's www/sw.js must also control pkg/, or the engine's
  // Worker (pkg/worker.js) and its imports are fetched past it offline.
  if (req.headers['service-worker'] === 'script') headers['service-worker-allowed'] = '/';

  if (notModified(req.headers, etag, info.mtime)) {
    res.writeHead(304, headers);
    return res.end();
  }

  let range = null;
  if (req.headers.range && rangeApplies(req.headers['if-range'], etag, info.mtime)) {
    range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return fail(416, 'range not satisfiable', { 'content-range': `bytes */${size}` });
  }
  if (range) {
    headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
    headers['content-length'] = range.end - range.start + 1;
    res.writeHead(206, headers);
  } else {
    headers['content-length'] = size;
    res.writeHead(200, headers);
  }
  if (req.method === 'HEAD' || size === 0) return res.end();

  if (gguf) log.ranges.push(req.headers.range ?? null);
  const stream = createReadStream(path, range ? { start: range.start, end: range.end } : {});
  stream.on('error', (e) => res.destroy(e));
  res.on('close', () => stream.destroy());
  if (!gguf) return stream.pipe(res);
  try {
    for await (const chunk of stream) {
      if (res.destroyed) break;
      log.sent += chunk.length;
      if (!res.write(chunk)) {
        await new Promise((ok) => {
          const done = () => {
            res.off('drain', done).off('close', done);
            ok();
          };
          res.on('drain', done).on('close', done);
        });
      }
      if (throttle) await new Promise((ok) => setTimeout(ok, (1000 * chunk.length) / throttle));
    }
    res.end();
  } catch (e) {
    res.destroy(e);
  }
}

/** A conditional GET whose validator still matches. If-None-Match wins over If-Modified-Since. */
function notModified(headers, etag, mtime) {
  const match = headers['if-none-match'];
  if (match !== undefined) return match.split(',').some((tag) => [etag, `W/${etag}`, '*'].includes(tag.trim()));
  const since = Date.parse(headers['if-modified-since'] ?? '');
  return Number.isFinite(since) && Math.floor(mtime.getTime() / 1000) * 1000 <= since;
}

/** If-Range: the range is honoured only while the file is the one the client has part of. */
function rangeApplies(ifRange, etag, mtime) {
  if (ifRange === undefined) return true;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return ifRange === etag;
  return Date.parse(ifRange) === Math.floor(mtime.getTime() / 1000) * 1000;
}

/**
 * One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped to the file:
 * `{ start, end }` (inclusive), 'unsatisfiable', or null to ignore the header
 * and send the whole file (malformed, or several ranges).
 */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (flag, fallback) => {
    const i = args.indexOf(flag);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
  };
  const port = Number(value('--port', 8080));
  const host = value('--host', '127.0.0.1');
  const isolated = !args.includes('--no-isolation');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: node scripts/serve.mjs [--port N] [--host H] [--no-isolation]');
    process.exit(2);
  }
  const server = await serve({ port, host, isolated });
  console.log(`serving ${repoRoot} at ${server.url}/${isolated ? ' (cross-origin isolated)' : ''}`);
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
