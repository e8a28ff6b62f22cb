// webslm/prompt-api: the Prompt API explainer's examples, written as the
// explainer writes them against `LanguageModel`, with SmolLM2 as the model
// installPolyfill sets. promptApi(defaults), with installPolyfill's defaults,
// registers them as node:test tests; Node runs them from
// prompt-api.test.mjs, Deno from tests/deno/, and tests/browser/
// prompt-api.test.mjs runs the same examples in a page.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';

export function promptApi(defaults) {
  let LanguageModel;
  before(async () => {
    const api = await import('../../pkg/prompt-api.js');
    assert.equal(await api.LanguageModel.availability(), 'unavailable', 'no model set yet');
    assert.equal(await api.LanguageModel.params(), null);
    LanguageModel = api.installPolyfill(defaults);
    assert.equal(globalThis.LanguageModel, LanguageModel);
  });

  test("a session with no initial prompts on Gemma 3, whose template cannot render an empty conversation", async () => {
    const session = await LanguageModel.create({ model: new URL('../../models/gemma-3-270m-q4_k_m.gguf', import.meta.url).pathname, maxTokens: 8 });
    assert.equal(session.inputUsage, 0);
    assert.equal(typeof (await session.prompt('Hi')), 'string');
    assert.ok(session.inputUsage > 0);
    session.destroy();
  });

  test('availability and params', async () => {
    assert.equal(await LanguageModel.availability(), 'available');
    assert.equal(await LanguageModel.availability({ expectedInputs: [{ type: 'image' }] }), 'unavailable');
    assert.deepEqual(await LanguageModel.params(), { defaultTopK: 3, maxTopK: 128, defaultTemperature: 1, maxTemperature: 2 });
  });

  test('zero-shot prompting, whole and streamed; download progress from 0 to 1', async () => {
    const seen = [];
    const session = await LanguageModel.create({
      monitor(m) {
        m.addEventListener('downloadprogress', (e) => seen.push(e.loaded));
      },
    });
    assert.equal(seen[0], 0);
    assert.equal(seen.at(-1), 1);
    const result = await session.prompt('Write me a poem.');
    assert.equal(typeof result, 'string');
    assert.ok(result.length > 0);
    let streamed = '';
    for await (const chunk of session.promptStreaming('Write me an extra-long poem.')) streamed += chunk;
    assert.ok(streamed.length > 0);
    session.destroy();
  });

  test('system prompts, n-shot prompting and clone', async () => {
    const session = await LanguageModel.create({
      initialPrompts: [
        { role: 'system', content: 'Predict up to 5 emojis as a response to a comment. Output emojis, comma-separated.' },
        { role: 'user', content: 'This is amazing!' },
        { role: 'assistant', content: '❤️, ➕' },
        { role: 'user', content: 'LGTM' },
        { role: 'assistant', content: '👍, 🚢' },
      ],
      temperature: 0.5,
      topK: 10,
    });
    assert.equal(session.temperature, 0.5);
    assert.equal(session.topK, 10);
    const before = session.inputUsage;
    assert.ok(before > 0 && before < session.inputQuota);
    const predictEmoji = async (comment) => (await session.clone()).prompt(comment);
    assert.equal(typeof (await predictEmoji('Back to the drawing board')), 'string');
    assert.equal(session.inputUsage, before, "a clone's prompt leaves the original as it was");
    await assert.rejects(LanguageModel.create({ initialPrompts: [{ role: 'user', content: 'hi' }, { role: 'system', content: 'late' }] }), TypeError);
    await assert.rejects(session.prompt([{ role: 'system', content: 'no' }]), { name: 'NotSupportedError' });
    session.destroy();
  });

  test('responseConstraint: a JSON schema and a RegExp', async () => {
    const session = await LanguageModel.create();
    const schema = { type: 'object', required: ['rating'], additionalProperties: false, properties: { rating: { type: 'number', minimum: 0, maximum: 5 } } };
    const result = await session.prompt('Summarize this feedback into a rating between 0-5: The food was delicious, service was excellent, will recommend.', { responseConstraint: schema });
    const { rating } = JSON.parse(result);
    assert.ok(rating >= 0 && rating <= 5, result);
    const withNote = await session.measureInputUsage('Rate it.', { responseConstraint: schema });
    const without = await session.measureInputUsage('Rate it.', { responseConstraint: schema, omitResponseConstraintInput: true });
    assert.ok(withNote > without, `${withNote} > ${without}`);
    const email = await session.prompt('Create a fictional email address for Ada.', { responseConstraint: /^[a-z]{1,10}@[a-z]{1,10}\.com$/ });
    assert.match(email, /^[a-z]{1,10}@[a-z]{1,10}\.com$/);
    await assert.rejects(session.prompt('x', { responseConstraint: 'json' }), TypeError);
    await assert.rejects(session.prompt('x', { omitResponseConstraintInput: true }), TypeError);
    session.destroy();
  });

  test('a prefix, append, and usage that grows with the conversation', async () => {
    const session = await LanguageModel.create();
    const start = session.inputUsage;
    await session.append([{ role: 'user', content: 'My name is Ada.' }]);
    assert.ok(session.inputUsage > start);
    const sheet = await session.prompt([
      { role: 'user', content: 'Create a TOML character sheet for a gnome barbarian' },
      { role: 'assistant', content: '```toml\n', prefix: true },
    ]);
    assert.equal(typeof sheet, 'string');
    const usage = await session.measureInputUsage('What is my name?');
    assert.ok(usage > 0);
    await assert.rejects(session.prompt([{ role: 'assistant', content: 'x', prefix: true }, { role: 'user', content: 'y' }]), { name: 'SyntaxError' });
    session.destroy();
  });

  test('aborts: a prompt, create, and destroy; the session goes on after an aborted prompt', async () => {
    const session = await LanguageModel.create();
    const controller = new AbortController();
    const pending = session.prompt('Write me a very long poem about the sea.', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, { name: 'AbortError' });
    const usage = session.inputUsage;
    assert.equal(typeof (await session.prompt('Hi')), 'string');
    assert.ok(session.inputUsage > usage);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(LanguageModel.create({ signal: aborted.signal }), { name: 'AbortError' });
    session.destroy();
    await assert.rejects(session.prompt('Hi'), { name: 'AbortError' });
  });

  test('quota: a prompt past the whole context is a QuotaExceededError; overflow drops the oldest turns with an event', async () => {
    const session = await LanguageModel.create({ loadOptions: { contextLength: 256 }, initialPrompts: [{ role: 'system', content: 'Be brief.' }] });
    assert.equal(session.inputQuota, 256);
    await assert.rejects(session.prompt('word '.repeat(400)), (e) => e.name === 'QuotaExceededError' && e.requested > e.quota);
    let overflowed = 0;
    session.addEventListener('quotaoverflow', () => overflowed++);
    for (let i = 0; i < 4; i++) await session.append(`Fact ${i}: ${'the sky is blue and the grass is green. '.repeat(6)}`);
    assert.ok(overflowed > 0, 'the oldest turns were dropped');
    assert.ok(session.inputUsage <= session.inputQuota);
    assert.equal(typeof (await session.prompt('Hi')), 'string');
    session.destroy();
  });
}
