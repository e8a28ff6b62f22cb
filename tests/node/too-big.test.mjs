// A model too big for wasm32's 4 GiB is refused from its header alone,
// before any weight is sent: a local HTTP server serves a GGUF file with
// Llama-3.2-3B's shape (its header, then gigabytes of zeros made up as they
// are asked for) and logs every range it sends.
import 'fake-indexeddb/auto';
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Generator, WebslmError } from '../../pkg/index.js';

const GGML = { F32: 0, F16: 1, Q8_0: 8 };
/** Bytes a row of `n` elements takes in each type. */
const rowBytes = { [GGML.F32]: (n) => 4 * n, [GGML.F16]: (n) => 2 * n, [GGML.Q8_0]: (n) => (n / 32) * 34 };

/** A GGUF header (version 3) for Llama-3.2-3B's shape in `type`, and the size of the whole file. */
function llama3b(type) {
  const [n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab] = [3072, 28, 24, 8, 8192, 128256];
  const kv_dim = (n_embd / n_head) * n_head_kv;
  const tensors = [['token_embd.weight', [n_embd, n_vocab], type], ['output_norm.weight', [n_embd], GGML.F32]];
  for (let i = 0; i < n_layer; i++) {
    tensors.push(
      [`blk.${i}.attn_norm.weight`, [n_embd], GGML.F32],
      [`blk.${i}.attn_q.weight`, [n_embd, n_embd], type],
      [`blk.${i}.attn_k.weight`, [n_embd, kv_dim], type],
      [`blk.${i}.attn_v.weight`, [n_embd, kv_dim], type],
      [`blk.${i}.attn_output.weight`, [n_embd, n_embd], type],
      [`blk.${i}.ffn_norm.weight`, [n_embd], GGML.F32],
      [`blk.${i}.ffn_gate.weight`, [n_embd, n_ff], type],
      [`blk.${i}.ffn_up.weight`, [n_embd, n_ff], type],
      [`blk.${i}.ffn_down.weight`, [n_ff, n_embd], type],
    );
  }
  const metadata = [
    ['general.architecture', 'llama'],
    ['llama.block_count', n_layer],
    ['llama.context_length', 131072],
    ['llama.embedding_length', n_embd],
    ['llama.feed_forward_length', n_ff],
    ['llama.attention.head_count', n_head],
    ['llama.attention.head_count_kv', n_head_kv],
    ['llama.rope.dimension_count', n_embd / n_head],
    ['llama.attention.layer_norm_rms_epsilon', 1e-5],
  ];
  const parts = [];
  const u32 = (v) => parts.push(new Uint8Array(new Uint32Array([v]).buffer));
  const u64 = (v) => parts.push(new Uint8Array(new BigUint64Array([BigInt(v)]).buffer));
  const str = (s) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    parts.push(b);
  };
  parts.push(new TextEncoder().encode('GGUF'));
  u32(3);
  u64(tensors.length);
  u64(metadata.length);
  for (const [key, value] of metadata) {
    str(key);
    if (typeof value === 'string') {
      u32(8);
      str(value);
    } else if (Number.isInteger(value)) {
      u32(4);
      u32(value);
    } else {
      u32(6);
      parts.push(new Uint8Array(new Float32Array([value]).buffer));
    }
  }
  let offset = 0;
  for (const [name, dims, ty] of tensors) {
    str(name);
    u32(dims.length);
    dims.forEach(u64);
    u32(ty);
    u64(offset);
    const size = rowBytes[ty](dims[0]) * (dims[1] ?? 1);
    offset += Math.ceil(size / 32) * 32;
  }
  const length = parts.reduce((n, p) => n + p.length, 0);
  const header = new Uint8Array(Math.ceil(length / 32) * 32);
  let at = 0;
  for (const p of parts) {
    header.set(p, at);
    at += p.length;
  }
  return { header, size: header.length + offset };
}

const files = { '/f16.gguf': llama3b(GGML.F16), '/q8_0.gguf': llama3b(GGML.Q8_0) };
/** Every request for a model: its path, Range header and the bytes sent. */
let log = [];
let server;
let base;

before(async () => {
  server = createServer((req, res) => {
    const file = files[req.url];
    if (!file) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]) + 1, file.size) : file.size;
    const entry = { path: req.url, range: req.headers.range ?? 'whole', sent: 0 };
    log.push(entry);
    const headers = { 'accept-ranges': 'bytes', 'content-length': end - start, etag: '"1"' };
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${file.size}`;
    res.writeHead(range ? 206 : 200, headers);
    // The header's bytes, then zeros, a MiB at a time as the socket drains.
    let at = start;
    const zeros = new Uint8Array(1 << 20);
    const pump = () => {
      while (at < end) {
        const n = Math.min(end - at, 1 << 20);
        const piece = at < file.header.length ? file.header.subarray(at, Math.min(at + n, file.header.length)) : zeros.subarray(0, n);
        at += piece.length;
        entry.sent += piece.length;
        if (!res.write(piece)) return res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => (at = end));
    pump();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server?.close());
beforeEach(() => (log = []));

async function refused(url, options, pattern) {
  await assert.rejects(Generator.load(url, options), (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, 'OUT_OF_MEMORY', e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

/** What the server sent for `path`: ranged requests only, and no more than `limit` bytes. */
function onlyHeaderSent(path, limit) {
  const mine = log.filter((e) => e.path === path);
  assert.ok(mine.length > 0, 'the model was requested');
  for (const e of mine) assert.match(e.range, /^bytes=\d+-\d+$/, `an open-ended request: ${JSON.stringify(mine)}`);
  const sent = mine.reduce((n, e) => n + e.sent, 0);
  assert.ok(sent <= limit, `${sent} bytes sent for a header of ${files[path].header.length}: ${JSON.stringify(mine)}`);
}

test('a model whose weights cannot fit in wasm32 is refused from its header, before its weights are sent', async () => {
  const { header, size } = files['/f16.gguf'];
  assert.ok(size > 5 * 2 ** 30, `the F16 file is ${size} bytes`);
  await refused(`${base}/f16.gguf`, {}, /MiB of weights.*smaller quantization.*WebGPU/s);
  // Requests double what has come, so at most twice the header arrives.
  onlyHeaderSent('/f16.gguf', Math.max(2 * header.length, 1 << 20));
  assert.deepEqual(await Generator.cache.list(), [], 'nothing of the refused file stays in the cache');
});

test('a model that fits only with a smaller context is refused with the context it can take', async () => {
  const { header } = files['/q8_0.gguf'];
  await refused(`${base}/q8_0.gguf`, { contextLength: 131072 }, /KV cache for 131072 positions.*smaller contextLength \(at most about \d+\)/s);
  onlyHeaderSent('/q8_0.gguf', Math.max(2 * header.length, 1 << 20));
});
