// The npm package (built into pkg/ by scripts/build-pkg.sh) in headless
// Chromium, as a web page uses it: SmolLM2 loaded by URL from
// scripts/serve.mjs, generation against llama.cpp's tokens, aborts, and the
// error codes of bad sources. One browser and one page for the whole file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { serve } from '../../scripts/serve.mjs';
import { launch } from './chromium.mjs';

const root = new URL('../../', import.meta.url);
const MODEL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
const artifacts = new URL('target/browser-artifacts/', root);

let modelSize;
let server;
let browser;
let page;
const consoleErrors = [];

before(async () => {
  modelSize = (await stat(new URL(MODEL, root)).catch(() => assert.fail(`${MODEL} is missing: run scripts/fetch-models.sh`))).size;
  await stat(new URL('pkg/index.js', root)).catch(() => assert.fail('pkg/ is missing: run scripts/build-pkg.sh'));
  server = await serve();
  browser = await launch();
  page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`${server.url}/tests/browser/page.html`);
});

after(async () => {
  try {
    if (page) {
      await mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: new URL('package-test.png', artifacts).pathname, fullPage: true });
    }
  } finally {
    await browser?.close();
    await server?.close();
  }
});

/** A test whose failure carries the console errors that the page logged while it ran. */
function pageTest(name, fn) {
  test(name, async (t) => {
    const first = consoleErrors.length;
    try {
      await fn(t);
    } catch (e) {
      const errors = consoleErrors.slice(first);
      if (errors.length) e.message += `\nconsole errors of the page:\n  ${errors.join('\n  ')}`;
      throw e;
    }
  });
}

/** Loads `url` with `options` in the page; resolves to `{ code, message }` of the rejection, or null. */
function loadError(url, options = {}) {
  return page.evaluate(
    async ([url, options]) => {
      const { Generator } = await window.webslm;
      try {
        const g = await Generator.load(url, options);
        await g.dispose();
        return null;
      } catch (e) {
        window.show(`load ${url} ${JSON.stringify(options)}: ${e.code}`);
        return { code: e.code, message: e.message };
      }
    },
    [url, options],
  );
}

pageTest('the page is cross-origin isolated (the threaded build needs it)', async () => {
  assert.equal(await page.evaluate(() => window.crossOriginIsolated), true);
});

pageTest('SmolLM2 loads by URL, with progress up to the file size', async () => {
  const result = await page.evaluate(async (url) => {
    const { Generator } = await window.webslm;
    const events = [];
    window.gen = await Generator.load(url, { onProgress: (e) => events.push(e) });
    window.show(`loaded ${url}: ${window.gen.info.architecture}, ${events.at(-1).loaded} bytes in ${events.length} progress events`);
    return {
      info: window.gen.info,
      count: events.length,
      last: events.at(-1),
      growing: events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded),
    };
  }, `/${MODEL}`);
  assert.equal(result.info.architecture, 'llama');
  assert.equal(result.info.backend, 'cpu');
  assert.ok(result.count > 1, `${result.count} progress events`);
  assert.ok(result.growing, 'progress only grows');
  assert.deepEqual(result.last, { phase: 'load', loaded: modelSize, total: modelSize });
});

pageTest("the download is kept in the browser's IndexedDB; a second load fetches no model bytes", async () => {
  const modelRequests = [];
  const onRequest = (r) => r.url().endsWith('.gguf') && modelRequests.push(r.url());
  page.on('request', onRequest);
  try {
    const result = await page.evaluate(async (url) => {
      const { Generator } = await window.webslm;
      const cached = (await Generator.cache.list()).find((m) => m.url === new URL(url, location.href).href);
      const phases = new Set();
      const again = await Generator.load(url, { contextLength: 64, onProgress: (e) => phases.add(e.phase) });
      await again.dispose();
      return { cached, phases: [...phases], estimate: await Generator.cache.estimate() };
    }, `/${MODEL}`);
    assert.equal(result.cached?.complete, true);
    assert.equal(result.cached.size, modelSize);
    assert.deepEqual(result.phases, ['load']);
    assert.deepEqual(modelRequests, []);
    assert.ok(result.estimate.models >= modelSize && result.estimate.quota > 0, JSON.stringify(result.estimate));
  } finally {
    page.off('request', onRequest);
  }
});

pageTest('greedy generation follows llama.cpp', async () => {
  const n = 5;
  const result = await page.evaluate(
    async ([ids, n]) => {
      const tokens = [];
      let text = '';
      for await (const p of window.gen.generate(ids, { maxTokens: n })) {
        tokens.push(p.token);
        text += p.text;
      }
      window.show(`generated ${JSON.stringify(text)}`);
      return { tokens, stats: window.gen.stats };
    },
    [fox.prompt_token_ids, n],
  );
  assert.deepEqual(result.tokens, fox.generated_token_ids.slice(0, n));
  assert.equal(result.stats.generatedTokens, n);
  assert.equal(result.stats.finishReason, 'max_tokens');
});

pageTest('an abort stops a generation and leaves the generator usable', async () => {
  const result = await page.evaluate(async () => {
    const controller = new AbortController();
    let pieces = 0;
    let code = null;
    try {
      for await (const _ of window.gen.generate('Once upon a time', { maxTokens: 50, signal: controller.signal })) {
        if (++pieces === 2) controller.abort();
      }
    } catch (e) {
      code = e.code;
    }
    let after = 0;
    for await (const _ of window.gen.generate('Once upon a time', { maxTokens: 2 })) after++;
    window.show(`aborted after ${pieces} tokens (${code}), then generated ${after}`);
    return { code, pieces, after };
  });
  assert.deepEqual(result, { code: 'ABORTED', pieces: 2, after: 2 });
});

pageTest('bad sources reject with stable codes', async () => {
  const notGguf = await loadError('/package.json');
  assert.equal(notGguf?.code, 'INVALID_GGUF', notGguf?.message);
  const missing = await loadError('/models/missing.gguf');
  assert.equal(missing?.code, 'NETWORK', missing?.message);
  assert.match(missing.message, /404/);
});

pageTest("device: 'webgpu' runs on the page's adapter (SwiftShader here): llama.cpp's greedy tokens, an abort, a second turn from the cache", async (t) => {
  const n = 5;
  const result = await page.evaluate(
    async ([url, ids, n]) => {
      const { Generator } = await window.webslm;
      const g = await Generator.load(url, { device: 'webgpu', contextLength: 256 });
      const info = g.info;
      const tokens = [];
      for await (const p of g.generate(ids, { maxTokens: n })) tokens.push(p.token);
      const controller = new AbortController();
      let pieces = 0;
      let code = null;
      try {
        for await (const _ of g.generate('Once upon a time', { maxTokens: 50, signal: controller.signal })) {
          if (++pieces === 2) controller.abort();
        }
      } catch (e) {
        code = e.code;
      }
      const turn = async (messages) => {
        let text = '';
        for await (const p of g.chat(messages, { maxTokens: 3 })) text += p.text;
        return { text, reused: g.stats.reusedTokens };
      };
      const first = await turn([{ role: 'user', content: 'Hi' }]);
      const second = await turn([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: first.text },
        { role: 'user', content: 'And then?' },
      ]);
      await g.dispose();
      window.show(`webgpu (${info.adapter}): ${JSON.stringify(tokens)}, aborted after ${pieces} (${code}), second turn reused ${second.reused}`);
      return { info, tokens, code, pieces, first, second };
    },
    [`/${MODEL}`, fox.prompt_token_ids, n],
  );
  t.diagnostic(`adapter: ${result.info.adapter}, kernels: ${result.info.kernels}`);
  assert.equal(result.info.backend, 'webgpu');
  // SwiftShader emulates a GPU on the CPU: the software kernels.
  assert.equal(result.info.kernels, 'software');
  assert.deepEqual(result.tokens, fox.generated_token_ids.slice(0, n));
  assert.deepEqual([result.code, result.pieces], ['ABORTED', 2]);
  assert.ok(result.first.text.length > 0);
  assert.ok(result.second.reused > 0, `second turn reused ${result.second.reused} tokens`);
});

pageTest("gpuKernels: 'hardware' runs the kernels for real GPUs (here on SwiftShader, where each token takes seconds) to llama.cpp's greedy token; an unknown family is INVALID_ARGUMENT", async (t) => {
  // One token: the prompt through the tiled GEMM, its logits through the GEMV.
  const n = 1;
  const result = await page.evaluate(
    async ([url, ids, n]) => {
      const { Generator } = await window.webslm;
      const g = await Generator.load(url, { device: 'webgpu', gpuKernels: 'hardware', contextLength: 256 });
      const tokens = [];
      for await (const p of g.generate(ids, { maxTokens: n })) tokens.push(p.token);
      const { kernels } = g.info;
      await g.dispose();
      const bad = await Generator.load(url, { device: 'webgpu', gpuKernels: 'fast' }).catch((e) => e.code);
      const f16 = (await navigator.gpu.requestAdapter()).features.has('shader-f16');
      window.show(`webgpu, ${kernels} kernels: ${JSON.stringify(tokens)}`);
      return { kernels, tokens, bad, f16 };
    },
    [`/${MODEL}`, fox.prompt_token_ids, n],
  );
  t.diagnostic(`kernels: ${result.kernels}`);
  // In f16 where the adapter has shader-f16.
  assert.equal(result.kernels, result.f16 ? 'hardware+f16' : 'hardware');
  assert.deepEqual(result.tokens, fox.generated_token_ids.slice(0, n));
  assert.equal(result.bad, 'INVALID_ARGUMENT');
});

/**
 * Runs `body` in the page with SwiftShader's adapter disguised as a hardware
 * GPU named `name` (its info, as the browser tells it, says nothing of
 * SwiftShader, and it is no fallback adapter): the mocked slow adapter
 * `device: 'auto'` must find out by measuring.
 */
async function withDisguisedAdapter(name, body, arg) {
  return page.evaluate(
    async ([name, body, arg]) => {
      const proto = GPUAdapter.prototype;
      const saved = ['info', 'isFallbackAdapter'].map((k) => [k, Object.getOwnPropertyDescriptor(proto, k)]);
      const real = saved[0][1].get;
      Object.defineProperty(proto, 'info', {
        configurable: true,
        get() {
          const i = real.call(this);
          return { vendor: 'test', architecture: name, device: '', description: '', isFallbackAdapter: false, subgroupMinSize: i.subgroupMinSize, subgroupMaxSize: i.subgroupMaxSize };
        },
      });
      Object.defineProperty(proto, 'isFallbackAdapter', { configurable: true, get: () => false });
      try {
        return await new Function('arg', `return (${body})(arg)`)(arg);
      } finally {
        for (const [k, d] of saved) {
          if (d) Object.defineProperty(proto, k, d);
          else delete proto[k];
        }
      }
    },
    [name, body.toString(), arg],
  );
}

pageTest("device: 'auto' measures a hardware-looking adapter that is slow (SwiftShader disguised), loads on the CPU instead with llama.cpp's greedy tokens, and the next load goes straight to the CPU", async (t) => {
  const result = await withDisguisedAdapter(
    'slow-gpu',
    async ([url, ids]) => {
      const { Generator } = await window.webslm;
      const load = async () => {
        const start = performance.now();
        const loaded = [];
        // The software kernels: SwiftShader's decode is slow enough on them
        // (a second a token), and they spare the test the hardware ones' five.
        const g = await Generator.load(url, { device: 'auto', gpuKernels: 'software', contextLength: 256, onProgress: (e) => loaded.push(e.loaded) });
        const tokens = [];
        for await (const p of g.generate(ids, { maxTokens: 5 })) tokens.push(p.token);
        const { backend, deviceReason } = g.info;
        await g.dispose();
        // A load's progress starts again from the file's start.
        const loads = 1 + loaded.filter((l, i) => i > 0 && l < loaded[i - 1]).length;
        return { backend, deviceReason, tokens, loads, ms: performance.now() - start };
      };
      const first = await load();
      const second = await load();
      return { first, second };
    },
    [`/${MODEL}`, fox.prompt_token_ids],
  );
  t.diagnostic(`first: ${result.first.deviceReason} (${result.first.ms.toFixed(0)} ms); second: ${result.second.deviceReason} (${result.second.ms.toFixed(0)} ms)`);
  for (const load of [result.first, result.second]) {
    assert.equal(load.backend, 'cpu');
    assert.deepEqual(load.tokens, fox.generated_token_ids.slice(0, 5));
  }
  assert.match(result.first.deviceReason, /^auto: the GPU decoded [\d.]+ tok\/s, the CPU is expected at [\d.]+ tok\/s$/);
  // Loaded on the GPU, then again on the CPU; the second time once.
  assert.equal(result.first.loads, 2);
  assert.equal(result.second.loads, 1);
  assert.match(result.second.deviceReason, /^auto: measured before on this adapter/);
});

pageTest("device: 'auto' keeps the GPU where it decodes faster than the CPU is expected to (a CPU calibrated slow)", async (t) => {
  const result = await withDisguisedAdapter(
    'fast-gpu',
    async ([url, ids]) => {
      const { Generator } = await window.webslm;
      // One byte a millisecond: a CPU slower than any GPU.
      const g = await Generator.load(url, { device: 'auto', gpuKernels: 'software', contextLength: 256, __cpuRateForTesting: 1 });
      const { backend, kernels, deviceReason } = g.info;
      await g.dispose();
      return { backend, kernels, deviceReason };
    },
    [`/${MODEL}`],
  );
  t.diagnostic(`${result.deviceReason} (${result.kernels} kernels)`);
  assert.equal(result.backend, 'webgpu');
  assert.equal(result.kernels, 'software');
  assert.match(result.deviceReason, /^auto: the GPU decoded [\d.]+ tok\/s, the CPU is expected at 0\.0 tok\/s$/);
});

pageTest("device: 'webgpu': a long prompt runs a batch per call with its progress, and an abort from onProgress stops it between batches", async () => {
  const result = await page.evaluate(async (url) => {
    const { Generator } = await window.webslm;
    const g = await Generator.load(url, { device: 'webgpu', contextLength: 1024 });
    const { backend } = g.info;
    const prompt = Array.from({ length: 600 }, (_, i) => (i * 37 + 5) % 1000);
    const run = async (options = {}) => {
      const events = [];
      const tokens = [];
      for await (const p of g.generate(prompt, { maxTokens: 4, onProgress: (e) => events.push(e.done), ...options })) tokens.push(p.token);
      return { events, tokens, reused: g.stats.reusedTokens };
    };
    const first = await run();
    // Another prompt, so that the next one reuses nothing.
    for await (const _ of g.generate([999], { maxTokens: 1 }));
    const controller = new AbortController();
    let code = null;
    try {
      await run({ signal: controller.signal, onProgress: () => controller.abort() });
    } catch (e) {
      code = e.code;
    }
    const resumed = await run();
    await g.dispose();
    window.show(`webgpu prefill progress ${JSON.stringify(first.events)}, aborted (${code}), resumed from ${resumed.reused}`);
    return { backend, first, code, resumed };
  }, '/models/tiny-arch/phi3-Q8_0.gguf');
  assert.equal(result.backend, 'webgpu');
  assert.deepEqual(result.first.events, [256, 512, 600]);
  assert.equal(result.code, 'ABORTED');
  assert.equal(result.resumed.reused, 256);
  assert.deepEqual(result.resumed.events, [512, 600]);
  assert.deepEqual(result.resumed.tokens, result.first.tokens);
});
