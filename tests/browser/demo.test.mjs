// The demo chat page (www/) end to end in headless Chromium, as a person uses
// it: the default model downloads with progress, replies stream, Stop halts
// one, a second turn prefills only the new message, a reload and an offline
// reload (the engine's Worker included) load from the cache with no model
// bytes fetched, bad models and the WebGPU choice show readable errors, and
// Gemma 3 270M, picked from the Model menu, chats through its own template.
// Screenshots go to target/browser-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { serve } from '../../scripts/serve.mjs';
import { launch } from './chromium.mjs';

const artifacts = new URL('../../target/browser-artifacts/', import.meta.url);

let server;
let browser;
let context;
let page;
const modelRequests = [];
const problems = [];

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await serve();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 420, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => r.url().endsWith('.gguf') && modelRequests.push(r.url()));
  page.on('pageerror', (e) => problems.push(String(e)));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const shot = (name) => page.screenshot({ path: new URL(`demo-${name}.png`, artifacts).pathname, fullPage: true });
const text = (selector) => page.textContent(selector);

async function open() {
  await page.goto(`${server.url}/www/`);
}

async function waitForModel() {
  await page.waitForFunction(() => !document.getElementById('prompt').disabled, null, { timeout: 120_000 });
}

/** Sets a field under Settings, opening the panel as a person would. */
async function setting(id, value) {
  if (!(await page.isVisible(`#${id}`))) await page.click('#settings summary');
  await page.fill(`#${id}`, value);
}

/** Sends `message` and waits for the reply to finish; returns the reply's text. */
async function chat(message) {
  const before = await page.locator('#messages li.assistant').count();
  await page.fill('#prompt', message);
  await page.press('#prompt', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#messages li.assistant').length > n, before);
  await page.waitForFunction(() => !document.querySelector('#messages li.streaming'), null, { timeout: 120_000 });
  return page.locator('#messages li.assistant .text').last().textContent();
}

test('the page opens and downloads the default model with progress', async (t) => {
  const opened = Date.now();
  await open();
  await page.waitForSelector('#progress:not([hidden])');
  await page.waitForFunction(() => /MB \(\d+%\)/.test(document.getElementById('progress-text').textContent));
  await shot('loading');
  await waitForModel();
  // The page is cross-origin isolated and asks for min(cores, 4) threads: one core runs a single-threaded build.
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const engine = cores > 1 ? `threads\\+(relaxed-simd|simd128), ${Math.min(cores, 4)} threads` : '(relaxed-simd|simd128), 1 thread';
  assert.match(await text('#status'), new RegExp(`\\(Q4_1\\) · CPU ${engine}`));
  assert.ok(modelRequests.length > 0, 'the model was downloaded');
  assert.equal(await page.isHidden('#progress'), true);
  assert.match(await text('#storage'), /\d+(\.\d)? MB/);
  assert.match(await text('#cached'), /SmolLM2-135M-Instruct\.Q4_1\.gguf — 98\.4 MB/);
  assert.equal(await page.inputValue('#model-choice'), 'smollm2');
  t.diagnostic(`ready ${Date.now() - opened} ms after opening (cold)`);
});

test('a reply streams in, and a second turn prefills only the new message', async () => {
  await setting('max-tokens', '12');
  await page.fill('#prompt', 'What is the capital of France?');
  await page.press('#prompt', 'Enter');
  // Streaming: the reply is seen partial before it is done.
  await page.waitForFunction(() => {
    const reply = document.querySelector('#messages li.assistant.streaming .text');
    return reply && reply.textContent.length > 0;
  });
  await shot('mid-reply');
  await page.waitForFunction(() => !document.querySelector('#messages li.streaming'), null, { timeout: 120_000 });
  const first = await text('#stats');
  assert.match(first, /12 tokens · [\d.]+ tokens\/s · first token after \d+ ms · prefilled \d+ new prompt tokens \(0 reused\)/);
  const reply = await chat('And of Italy?');
  assert.ok(reply.length > 0);
  const [, fresh, reused] = /prefilled (\d+) new prompt tokens \((\d+) reused\)/.exec(await text('#stats'));
  assert.ok(Number(reused) > Number(fresh), `second turn: ${fresh} new, ${reused} reused`);
  await shot('two-turns');
});

test('Stop halts a reply; the next message works', async () => {
  await setting('max-tokens', '200');
  await page.fill('#prompt', 'Tell me a long story about a lighthouse.');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => document.querySelector('#messages li.assistant.streaming .text')?.textContent.length > 10);
  await page.click('#stop');
  await page.waitForFunction(() => !document.querySelector('#messages li.streaming'));
  const stopped = await page.locator('#messages li.assistant .text').last().textContent();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('#messages li.assistant .text').last().textContent(), stopped, 'nothing more arrives');
  assert.equal(await page.isHidden('#error'), true, 'a stop is not an error');
  await setting('max-tokens', '6');
  assert.ok((await chat('Say hello.')).length > 0);
});

test('JSON reply keeps the answer to the schema field', async () => {
  await setting('max-tokens', '200');
  await page.check('#json');
  const reply = JSON.parse(await chat('What is the capital of France?'));
  assert.deepEqual(Object.keys(reply), ['answer', 'confidence']);
  assert.equal(typeof reply.answer, 'string');
  assert.ok(['low', 'medium', 'high'].includes(reply.confidence), reply.confidence);
  await shot('json-reply');
  await page.fill('#schema', '{ "type": ');
  await page.fill('#prompt', 'Hi');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => /INVALID_ARGUMENT: the JSON schema is not JSON/.test(document.getElementById('error').textContent));
  await page.uncheck('#json');
});

test('New chat clears the conversation', async () => {
  await page.click('#new-chat');
  assert.equal(await page.locator('#messages li').count(), 0);
});

test('a reload loads from the cache with no model bytes fetched, then replies', async (t) => {
  modelRequests.length = 0;
  const opened = Date.now();
  await open();
  await waitForModel();
  // Enough tokens for the page's tokens/s to mean something.
  await setting('max-tokens', '32');
  await page.fill('#prompt', 'Hi!');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => document.querySelector('#messages li.assistant .text')?.textContent.length > 0, null, { timeout: 120_000 });
  t.diagnostic(`first token ${Date.now() - opened} ms after opening (cached model)`);
  await page.waitForFunction(() => !document.querySelector('#messages li.streaming'), null, { timeout: 120_000 });
  t.diagnostic(`the page shows: ${await text('#stats')}`);
  assert.deepEqual(modelRequests, []);
});

test('offline, the page and the cached model still work', async (t) => {
  modelRequests.length = 0;
  await context.setOffline(true);
  try {
    const opened = Date.now();
    await open();
    await waitForModel();
    assert.match(await text('#status'), /in a Worker — loaded in/);
    await setting('max-tokens', '4');
    assert.ok((await chat('Hello')).length > 0);
    t.diagnostic(`a reply ${Date.now() - opened} ms after opening offline`);
    await shot('offline');
  } finally {
    await context.setOffline(false);
  }
  assert.deepEqual(modelRequests, []);
});

test('a bad URL and a file that is not GGUF show readable errors', async () => {
  await page.fill('#model-url', `${server.url}/models/no-such-model.gguf`);
  await page.click('#load');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await text('#error'), /could not be downloaded.*\(NETWORK: .*404/);
  await shot('bad-url');

  await page.setInputFiles('#model-file', { name: 'notes.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('just some text, not a model') });
  await page.waitForFunction(() => /INVALID_GGUF/.test(document.getElementById('error').textContent));
  assert.match(await text('#error'), /not a GGUF model file/);
  await shot('not-gguf');
  assert.deepEqual(problems, [], 'no uncaught errors in the page');
});

test('the WebGPU backend (SwiftShader here) loads the model and replies; then back to the CPU', async () => {
  if (!(await page.isVisible('#backend'))) await page.click('#settings summary');
  await page.selectOption('#backend', 'webgpu');
  await page.fill('#model-url', `${server.url}/models/SmolLM2-135M-Instruct.Q4_1.gguf`);
  await page.click('#load');
  await waitForModel();
  assert.equal(await page.isHidden('#error'), true, await text('#error'));
  assert.match(await text('#status'), /WebGPU/);
  await setting('max-tokens', '4');
  assert.ok((await chat('Hello!')).length > 0);
  await shot('webgpu');

  await page.selectOption('#backend', 'cpu');
  await page.click('#load');
  await waitForModel();
  assert.match(await text('#status'), /CPU/);
  assert.equal(await page.isHidden('#error'), true);
  assert.deepEqual(problems, [], 'no uncaught errors in the page');
});

test('a GGUF of another architecture (the tiny qwen2 model, Qwen 2.5\'s template) loads by URL and replies', async () => {
  await page.fill('#model-url', `${server.url}/models/tiny-arch/qwen2-Q4_0.gguf`);
  await page.click('#load');
  await waitForModel();
  assert.equal(await page.isHidden('#error'), true, await text('#error'));
  assert.match(await text('#status'), /^tiny qwen2 \(Q4_0\) · CPU /);
  await setting('max-tokens', '4');
  assert.ok((await chat('Hello!')).length > 0);
  assert.match(await text('#stats'), /4 tokens · /);
  assert.deepEqual(problems, [], 'no uncaught errors in the page');
});

test('Gemma 3 270M, picked from the Model menu, loads and replies through its chat template', async () => {
  // llama.cpp's tokens of Gemma 3's template around this one message (the fixture's turn_markup prompt).
  const greedy = JSON.parse(await readFile(new URL('../fixtures/gemma3-270m-q4_k_m/reference_greedy.json', import.meta.url)));
  const turn = greedy.prompts.find((p) => p.name === 'turn_markup');
  assert.equal(turn.formatted, '<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n');
  await page.selectOption('#model-choice', 'gemma3');
  await waitForModel();
  assert.equal(await page.isHidden('#error'), true, await text('#error'));
  assert.match(await text('#status'), /^Gemma 3 270m \(\w+\) · CPU .* · in a Worker — loaded in/);
  assert.match(await text('#cached'), /gemma-3-270m-q4_k_m\.gguf — 253 MB/);
  // No system prompt, so that the rendered prompt is exactly the fixture's.
  await setting('system', '');
  await setting('temperature', '0');
  await setting('max-tokens', '8');
  assert.ok((await chat('What is the capital of France?')).length > 0);
  assert.match(await text('#stats'), new RegExp(`prefilled ${turn.prompt_token_ids.length} new prompt tokens \\(0 reused\\)`));
  await shot('gemma');
  assert.deepEqual(problems, [], 'no uncaught errors in the page');
});
