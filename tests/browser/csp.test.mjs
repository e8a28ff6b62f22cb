// The package and the demo page under the strict Content-Security-Policy
// that browser extensions and careful sites impose (www/README.md states it):
// no eval, no blob: Workers, nothing from elsewhere. The demo loads its model
// on threads in a Worker and chats; the test page (tests/browser/page.html,
// no inline script) loads SmolLM2 on the page's thread on two threads, in a
// Worker, and on WebGPU, and generates. No violation may be reported, and a
// thread pool must start rather than fall back to one thread. Under a policy
// that refuses WebAssembly or the Worker, the demo says so (BLOCKED).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve } from '../../scripts/serve.mjs';
import { launch } from './chromium.mjs';

const STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; style-src 'self'";

let server;
let browser;
const violations = [];

before(async () => {
  [server, browser] = await Promise.all([serve({ csp: STRICT_CSP }), launch()]);
});

after(() => Promise.all([browser?.close(), server?.close()]));

/** A new page whose console reports of policy violations (the page's and its Workers') are collected. */
async function newPage() {
  const page = await browser.newPage();
  page.on('console', (m) => /Content.Security.Policy/i.test(m.text()) && violations.push(m.text()));
  page.on('pageerror', (e) => violations.push(String(e)));
  return page;
}

test('the demo page loads its model on threads in a Worker and chats', async () => {
  const page = await newPage();
  await page.goto(`${server.url}/www/`);
  await page.waitForFunction(() => !document.getElementById('prompt').disabled, null, { timeout: 120_000 });
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const threads = Math.min(cores, 4);
  assert.match(await page.textContent('#status'), new RegExp(`${threads} threads? · in a Worker`));
  await page.fill('#prompt', 'Hi!');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#messages li.assistant').length > 0);
  await page.waitForFunction(() => !document.querySelector('#messages li.streaming'), null, { timeout: 120_000 });
  assert.ok((await page.locator('#messages li.assistant .text').last().textContent()).length > 0);
  assert.deepEqual(violations, []);
  await page.close();
});

test("the package on the page's thread (two threads), in a Worker and on WebGPU", async () => {
  const page = await newPage();
  await page.goto(`${server.url}/tests/browser/page.html`);
  const runs = await page.evaluate(async () => {
    const { Generator } = await window.webslm;
    const out = [];
    for (const options of [{ threads: 2 }, { worker: true, threads: 2 }, { device: 'webgpu' }]) {
      const gen = await Generator.load('/models/SmolLM2-135M-Instruct.Q4_1.gguf', { ...options, cache: false, contextLength: 256 });
      let text = '';
      for await (const p of gen.generate('The capital of France is', { maxTokens: 4 })) text += p.text;
      out.push({ options, info: gen.info, text });
      await gen.dispose();
    }
    return out;
  });
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  for (const { options, info, text } of runs) {
    assert.ok(text.length > 0, JSON.stringify(options));
    if (options.threads) assert.equal(info.threads, Math.min(2, cores), JSON.stringify({ options, info }));
    if (options.worker) assert.equal(info.worker, true);
    if (options.device) assert.equal(info.backend, 'webgpu');
  }
  assert.deepEqual(violations, []);
  await page.close();
});

test('a policy that refuses WebAssembly or the Worker is named on the demo page', async () => {
  for (const [policy, named] of [
    [STRICT_CSP.replace(" 'wasm-unsafe-eval'", ''), /BLOCKED: .*'wasm-unsafe-eval'/],
    [STRICT_CSP.replace("worker-src 'self'", "worker-src 'none'"), /BLOCKED: .*Worker \(worker-src\)/],
  ]) {
    const strict = await serve({ csp: policy });
    const page = await browser.newPage();
    try {
      await page.goto(`${strict.url}/www/`);
      await page.waitForFunction(() => /BLOCKED/.test(document.body.textContent), null, { timeout: 60_000 });
      assert.match(await page.textContent('body'), named, policy);
    } finally {
      await page.close();
      await strict.close();
    }
  }
});
