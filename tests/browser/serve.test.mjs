// scripts/serve.mjs, which the browser tests and the demo page load the
// package and the models from: types, ranges, validators, isolation and
// service-worker headers, and that no URL reaches outside the served root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { serve } from '../../scripts/serve.mjs';

const root = new URL('../../', import.meta.url);
let server;
let bytes;

before(async () => {
  server = await serve();
  bytes = await readFile(new URL('package.json', root));
});

after(() => server?.close());

/** A raw request: fetch() would normalise `..` out of the path before sending it. */
function get(path, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(server.url);
    const req = request({ hostname, port, path, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('files are served with their type, validators and isolation headers', async () => {
  const res = await get('/package.json');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, bytes);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(res.headers['content-length'], String(bytes.length));
  assert.equal(res.headers['accept-ranges'], 'bytes');
  assert.match(res.headers.etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.ok(Date.parse(res.headers['last-modified']) > 0);
  assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(res.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.equal((await get('/scripts/serve.mjs')).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await get('/tests/browser/page.html')).headers['content-type'], 'text/html; charset=utf-8');
  const head = await get('/package.json', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(bytes.length));
  assert.equal(head.body.length, 0);
  assert.equal((await get('/package.json', {}, 'POST')).status, 405);
});

test('ranges give 206 with Content-Range, 416 when unsatisfiable', async () => {
  const size = bytes.length;
  const cases = [
    ['bytes=2-9', 2, 9],
    ['bytes=5-', 5, size - 1],
    ['bytes=-4', size - 4, size - 1],
    [`bytes=3-${size + 100}`, 3, size - 1],
  ];
  for (const [range, start, end] of cases) {
    const res = await get('/package.json', { range });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
    assert.deepEqual(res.body, bytes.subarray(start, end + 1), range);
  }
  const beyond = await get('/package.json', { range: `bytes=${size}-` });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], `bytes */${size}`);
  // Several ranges, or a malformed one, are ignored: the whole file comes back.
  assert.equal((await get('/package.json', { range: 'bytes=0-1,4-5' })).status, 200);
  assert.equal((await get('/package.json', { range: 'bytes=9-2' })).status, 200);
});

test('validators give 304, and a stale If-Range the whole file', async () => {
  const { headers } = await get('/package.json');
  assert.equal((await get('/package.json', { 'if-none-match': headers.etag })).status, 304);
  assert.equal((await get('/package.json', { 'if-modified-since': headers['last-modified'] })).status, 304);
  assert.equal((await get('/package.json', { 'if-none-match': '"other"' })).status, 200);
  assert.equal((await get('/package.json', { range: 'bytes=0-3', 'if-range': headers.etag })).status, 206);
  const stale = await get('/package.json', { range: 'bytes=0-3', 'if-range': '"other"' });
  assert.equal(stale.status, 200);
  assert.deepEqual(stale.body, bytes);
});

test('a service worker script may control the whole origin', async () => {
  assert.equal((await get('/www/sw.js', { 'service-worker': 'script' })).headers['service-worker-allowed'], '/');
  assert.equal((await get('/www/sw.js')).headers['service-worker-allowed'], undefined);
});

test('no path leaves the root; missing files are 404', async () => {
  for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/tests/..%2f..%2f..%2fetc/passwd']) {
    const res = await get(path);
    assert.ok(res.status === 403 || res.status === 404, `${path}: ${res.status}`);
    assert.doesNotMatch(res.body.toString(), /root:/, path);
  }
  assert.equal((await get('/%00')).status, 403);
  assert.equal((await get('/nope.gguf')).status, 404);
  const dir = await get('/tests');
  assert.equal(dir.status, 301);
  assert.equal(dir.headers.location, '/tests/');
});

test('isolation headers can be turned off', async () => {
  const plain = await serve({ isolated: false });
  try {
    const res = await fetch(`${plain.url}/package.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cross-origin-opener-policy'), null);
    assert.equal(res.headers.get('cross-origin-embedder-policy'), null);
  } finally {
    await plain.close();
  }
});
