// The download cache, in Node with fake-indexeddb standing in for the
// browser's IndexedDB, against a local HTTP server that serves SmolLM2 with
// Range support and can drop connections or change the file's ETag.
import 'fake-indexeddb/auto';
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const MiB = 1 << 20;
const chunkSize = 4 * MiB;
/**
 * A fresh download's requests: the header first (SmolLM2's is 1.7 MiB), in
 * ranges that double what has come, then the rest of the file.
 */
const HEADER_REQUESTS = [`bytes=0-${MiB - 1}`, `bytes=${MiB}-${2 * MiB - 1}`, `bytes=${2 * MiB}-`];

let bytes;
let sha256;
let server;
let base;
/** What the server does: its ETag, and after how many body bytes each of its next responses dies (null: none). */
const faults = { etag: '"v1"', cuts: [] };
/** Every model request the server saw: the Range header, or 'whole'. */
let requests = [];

before(async () => {
  bytes = await readFile(modelPath).catch(() => assert.fail(`${modelPath} is missing: run scripts/fetch-models.sh`));
  sha256 = createHash('sha256').update(bytes).digest('hex');
  server = createServer((req, res) => {
    if (req.url === '/page.html') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>not a model</title>');
    if (!req.url.startsWith('/m/')) return res.writeHead(404).end();
    requests.push(req.headers.range ?? 'whole');
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]) + 1, bytes.byteLength) : bytes.byteLength;
    if (start >= bytes.byteLength) return res.writeHead(416, { 'content-range': `bytes */${bytes.byteLength}` }).end();
    const headers = { etag: faults.etag, 'accept-ranges': 'bytes', 'content-length': end - start };
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${bytes.byteLength}`;
    res.writeHead(range ? 206 : 200, headers);
    const cut = faults.cuts.shift();
    if (cut !== undefined && cut !== null) {
      // Part of the body, then the connection dies.
      res.write(bytes.subarray(start, Math.min(start + cut, end)), () => res.socket.destroy());
    } else {
      res.end(bytes.subarray(start, end));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server?.close());

beforeEach(() => {
  faults.etag = '"v1"';
  faults.cuts = [];
  requests = [];
});

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

async function load(url, options = {}) {
  const events = [];
  const gen = await Generator.load(url, { contextLength: 64, chunkSize, onProgress: (e) => events.push(e), ...options });
  return { gen, events };
}

async function entry(url) {
  return (await Generator.cache.list()).find((e) => e.url === url);
}

/** The bytes of `url` as IndexedDB holds them, chunk after chunk. */
async function cachedBytes(url) {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('webslm');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const chunks = await new Promise((resolve, reject) => {
    const get = db.transaction('chunks').objectStore('chunks').getAll(IDBKeyRange.bound([url, 0], [url, Infinity]));
    get.onsuccess = () => resolve(get.result);
    get.onerror = () => reject(get.error);
  });
  db.close();
  return Buffer.concat(chunks);
}

async function greedy(gen) {
  const ids = [];
  for await (const p of gen.generate('The capital of France is', { maxTokens: 3 })) ids.push(p.token);
  return ids;
}

test('a download is cached chunk by chunk; the next load reads it back with no network', async () => {
  const url = `${base}/m/first.gguf`;
  const first = await load(url);
  assert.ok(first.events.some((e) => e.phase === 'download'), 'download progress');
  assert.equal(first.events.at(-1).loaded, bytes.byteLength);
  assert.deepEqual(requests, HEADER_REQUESTS);
  const e = await entry(url);
  assert.equal(e.complete, true);
  assert.equal(e.size, bytes.byteLength);
  assert.equal(e.downloaded, bytes.byteLength);
  assert.ok((await cachedBytes(url)).equals(bytes), 'the cache holds the file byte for byte');
  const expected = await greedy(first.gen);
  await first.gen.dispose();

  requests = [];
  const second = await load(url);
  assert.deepEqual(requests, [], 'no request for a cached model');
  assert.ok(second.events.every((e) => e.phase === 'load'));
  assert.equal(second.events.at(-1).loaded, bytes.byteLength);
  assert.deepEqual(await greedy(second.gen), expected);
  await second.gen.dispose();
  assert.ok((await Generator.cache.estimate()).models >= bytes.byteLength);
});

test('a dropped connection resumes where it stopped within the same load', async () => {
  const url = `${base}/m/dropped.gguf`;
  faults.cuts = [null, null, 8.5 * MiB, 8 * MiB];
  const { gen } = await load(url);
  // The header; 2 MiB → dies at 10.5 MiB, 10.5 MiB → dies at 18.5 MiB, 18.5 MiB → the rest.
  assert.deepEqual(requests, [...HEADER_REQUESTS, `bytes=${10.5 * MiB}-`, `bytes=${18.5 * MiB}-`]);
  assert.ok((await cachedBytes(url)).equals(bytes));
  assert.equal((await entry(url)).complete, true);
  await gen.dispose();
});

test('a download killed mid-chunk fails with NETWORK, and the next load resumes it byte for byte', async () => {
  const url = `${base}/m/killed.gguf`;
  // A try that brings bytes resets the count of tries; three more that bring none give up.
  faults.cuts = [null, null, 8.5 * MiB, 0, 0, 0];
  await rejectsWith(load(url), 'NETWORK');
  const again = `bytes=${10.5 * MiB}-`;
  assert.deepEqual(requests, [...HEADER_REQUESTS, again, again, again]);
  const partial = await entry(url);
  assert.equal(partial.complete, false);
  assert.equal(partial.downloaded, 8 * MiB);
  assert.ok((await cachedBytes(url)).equals(bytes.subarray(0, 8 * MiB)));

  requests = [];
  const { gen, events } = await load(url);
  assert.deepEqual(requests, [`bytes=${8 * MiB}-`]);
  assert.ok(events.find((e) => e.phase === 'download').loaded >= 8 * MiB, 'the cached part is not downloaded again');
  assert.ok((await cachedBytes(url)).equals(bytes));
  assert.equal((await entry(url)).complete, true);
  await gen.dispose();
});

test('an abort during the download keeps the whole chunks; a changed ETag starts over', async () => {
  const url = `${base}/m/changed.gguf`;
  const controller = new AbortController();
  const onProgress = (e) => e.phase === 'download' && e.loaded > 9 * MiB && controller.abort();
  await rejectsWith(Generator.load(url, { chunkSize, onProgress, signal: controller.signal }), 'ABORTED');
  const partial = await entry(url);
  assert.equal(partial.complete, false);
  assert.ok(partial.downloaded >= 8 * MiB && partial.downloaded % chunkSize === 0, `kept ${partial.downloaded} bytes`);

  faults.etag = '"v2"';
  requests = [];
  const { gen } = await load(url);
  assert.deepEqual(requests, [`bytes=${partial.downloaded}-`, ...HEADER_REQUESTS]);
  const e = await entry(url);
  assert.equal(e.etag, '"v2"');
  assert.equal(e.complete, true);
  assert.ok((await cachedBytes(url)).equals(bytes));
  await gen.dispose();
});

test('sha256: a mismatch is rejected and nothing is kept; a match is recorded', async () => {
  const url = `${base}/m/verified.gguf`;
  await rejectsWith(load(url, { sha256: '0'.repeat(64) }), 'INTEGRITY');
  assert.equal(await entry(url), undefined);
  assert.equal((await cachedBytes(url)).byteLength, 0);

  const { gen } = await load(url, { sha256: sha256.toUpperCase() });
  assert.equal((await entry(url)).sha256, sha256);
  await gen.dispose();
  // A cached file checked against another digest is not the file meant: it goes.
  requests = [];
  await rejectsWith(load(url, { sha256: 'f'.repeat(64) }), 'INTEGRITY');
  assert.deepEqual(requests, []);
  assert.equal(await entry(url), undefined);
  await rejectsWith(load(url, { sha256: 'xyz' }), 'INVALID_ARGUMENT');
});

test("a quota that fills during the download: the model loads uncached with a warning (cache: 'required' fails with QUOTA_EXCEEDED); other cached models stay intact", async () => {
  const kept = `${base}/m/kept.gguf`;
  const full = `${base}/m/full.gguf`;
  (await load(kept)).gen.dispose();
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (value, key) {
    if (Array.isArray(key) && key[0] === full && key[1] >= 3) throw new DOMException('the quota is full', 'QuotaExceededError');
    return put.call(this, value, key);
  };
  try {
    const { gen, events } = await load(full);
    assert.equal(gen.info.cached, false);
    const warnings = events.filter((e) => e.phase === 'warning');
    assert.deepEqual(warnings.map((w) => w.code), ['QUOTA_EXCEEDED']);
    assert.match(warnings[0].message, /without being cached: .*quota is full/);
    assert.equal(events.at(-1).loaded, bytes.byteLength, 'the download went on to the end');
    gen.dispose();
    assert.equal(await entry(full), undefined, 'the partial download is given back');
    await rejectsWith(load(full, { cache: 'required' }), 'QUOTA_EXCEEDED');
  } finally {
    IDBObjectStore.prototype.put = put;
  }
  assert.equal(await entry(full), undefined, 'the partial download is given back');
  assert.equal((await cachedBytes(full)).byteLength, 0);
  assert.equal((await entry(kept)).complete, true);
  assert.ok((await cachedBytes(kept)).equals(bytes));
  requests = [];
  const again = await load(kept);
  assert.equal(again.gen.info.cached, true);
  again.gen.dispose();
  assert.deepEqual(requests, []);
});

test('cache: false never stores; delete and clear remove models; bad files are not kept', async () => {
  const url = `${base}/m/uncached.gguf`;
  (await load(url, { cache: false })).gen.dispose();
  assert.equal(await entry(url), undefined);

  const page = `${base}/page.html`;
  await rejectsWith(load(page), 'INVALID_GGUF');
  assert.equal(await entry(page), undefined);
  await rejectsWith(load(`${base}/missing.gguf`), 'NETWORK');

  const first = `${base}/m/first.gguf`;
  assert.equal(await Generator.cache.delete(first), true);
  assert.equal(await Generator.cache.delete(first), false);
  assert.equal(await entry(first), undefined);
  assert.ok((await Generator.cache.list()).length > 0);
  await Generator.cache.clear();
  assert.deepEqual(await Generator.cache.list(), []);
  assert.equal((await Generator.cache.estimate()).models, 0);
});
