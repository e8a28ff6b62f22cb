// webslm/prompt-api in headless Chromium: the explainer's examples, as it
// writes them, run in the page against the polyfill that installPolyfill
// puts on globalThis, with SmolLM2 by URL; what they return is checked here.
// Chromium 156 has a built-in LanguageModel with no model available here:
// installPolyfill keeps it, unless forced.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testPage } from './chromium.mjs';

let opened;
let page;

before(async () => {
  opened = await testPage();
  page = opened.page;
  const installed = await page.evaluate(async () => {
    const builtIn = globalThis.LanguageModel;
    const { installPolyfill, LanguageModel: ours } = await import('/pkg/prompt-api.js');
    const options = { model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf', maxTokens: 48 };
    const kept = installPolyfill(options) === builtIn;
    const builtInAvailability = await builtIn?.availability();
    const forced = installPolyfill({ ...options, force: true }) === ours && globalThis.LanguageModel === ours;
    return { builtIn: !!builtIn, kept, builtInAvailability, forced };
  });
  assert.deepEqual(installed, { builtIn: true, kept: true, builtInAvailability: 'unavailable', forced: true });
});

after(() => opened?.close());

/** Runs `example` (an async function of no arguments) in the page; its result. */
const run = (example) => page.evaluate(example);

test('download progress, then zero-shot prompting, whole and streamed', async () => {
  const r = await run(async () => {
    const progress = [];
    const availability = await LanguageModel.availability();
    const session = await LanguageModel.create({
      monitor(m) {
        m.addEventListener('downloadprogress', (e) => progress.push([e.constructor.name, e.loaded, e.total]));
      },
    });
    const result = await session.prompt('Write me a poem.');
    const chunks = [];
    const stream = session.promptStreaming('Write me an extra-long poem.');
    for await (const chunk of stream) chunks.push(chunk);
    session.destroy();
    return { availability, progress, result, chunks, after: await LanguageModel.availability() };
  });
  assert.equal(r.availability, 'downloadable');
  assert.deepEqual(r.progress[0], ['ProgressEvent', 0, 1]);
  assert.deepEqual(r.progress.at(-1), ['ProgressEvent', 1, 1]);
  assert.ok(r.result.length > 0 && r.chunks.length > 0);
  assert.equal(r.after, 'available', 'the model is in the cache now');
});

test('initialPrompts (n-shot) and clone', async () => {
  const r = await run(async () => {
    const session = await LanguageModel.create({
      initialPrompts: [
        { role: 'system', content: 'Predict up to 5 emojis as a response to a comment. Output emojis, comma-separated.' },
        { role: 'user', content: 'This is amazing!' },
        { role: 'assistant', content: '❤️, ➕' },
        { role: 'user', content: 'LGTM' },
        { role: 'assistant', content: '👍, 🚢' },
      ],
    });
    async function predictEmoji(comment) {
      const freshSession = await session.clone();
      return await freshSession.prompt(comment);
    }
    const usage = session.inputUsage;
    const result1 = await predictEmoji('Back to the drawing board');
    const result2 = await predictEmoji('This code is so good you should get promoted');
    return { result1, result2, same: session.inputUsage === usage, usage, quota: session.inputQuota };
  });
  assert.equal(typeof r.result1, 'string');
  assert.equal(typeof r.result2, 'string');
  assert.ok(r.same && r.usage > 0 && r.usage < r.quota);
});

test('responseConstraint: a JSON schema and a RegExp', async () => {
  const r = await run(async () => {
    const session = await LanguageModel.create();
    const schema = { type: 'object', required: ['rating'], additionalProperties: false, properties: { rating: { type: 'number', minimum: 0, maximum: 5 } } };
    const result = await session.prompt('Summarize this feedback into a rating between 0-5: The food was delicious, service was excellent, will recommend.', { responseConstraint: schema });
    const emailRegExp = /^[a-z]{1,12}@[a-z]{1,12}\.com$/;
    const emailAddress = await session.prompt('Create a fictional email address for Ada.', { responseConstraint: emailRegExp });
    return { rating: JSON.parse(result).rating, emailAddress };
  });
  assert.ok(r.rating >= 0 && r.rating <= 5, String(r.rating));
  assert.match(r.emailAddress, /^[a-z]{1,12}@[a-z]{1,12}\.com$/);
});

test('aborting a prompt, and quota', async () => {
  const r = await run(async () => {
    const session = await LanguageModel.create();
    const controller = new AbortController();
    const pending = session.prompt('Write me a poem', { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    const aborted = await pending.then(() => 'resolved', (e) => e.name);
    const next = await session.prompt('Hi');
    const tooLong = await session.prompt('word '.repeat(5000)).then(() => null, (e) => ({ name: e.name, requested: e.requested, quota: e.quota }));
    session.destroy();
    const destroyed = await session.prompt('Hi').then(() => 'resolved', (e) => e.name);
    return { aborted, next, tooLong, destroyed };
  });
  assert.equal(r.aborted, 'AbortError');
  assert.equal(typeof r.next, 'string');
  assert.equal(r.tooLong.name, 'QuotaExceededError');
  assert.ok(r.tooLong.requested > r.tooLong.quota);
  assert.equal(r.destroyed, 'AbortError');
});
