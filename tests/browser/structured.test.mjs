// Structured output in headless Chromium, as a page uses it: the models
// loaded by URL, every reply under tests/fixtures/schemas.json's schemas
// (SmolLM2 on the page's thread; Gemma 3 there and SmolLM2 in Worker mode
// with a few of them), a
// regex, a GBNF grammar, a rejected schema and an abort; the replies are
// validated here with Ajv (tests/node/structured.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testPage } from './chromium.mjs';
import { MODELS, FEW, schemas, schemaValidator } from '../node/structured.mjs';

let opened;
let page;

before(async () => {
  opened = await testPage();
  page = opened.page;
});

after(() => opened?.close());

/**
 * Loads `model` in the page (`worker` mode or not) and runs each request
 * `{ prompt, responseFormat, maxTokens, abortAfter }` as a chat turn: its
 * text and finish reason, or the error's code and message.
 */
function inPage(model, worker, requests) {
  return page.evaluate(
    async ([url, worker, requests]) => {
      const { Generator } = await window.webslm;
      const gen = await Generator.load(url, { worker, cache: false });
      const out = [];
      try {
        for (const { prompt, responseFormat, maxTokens, abortAfter } of requests) {
          const controller = new AbortController();
          let text = '';
          let n = 0;
          try {
            for await (const p of gen.chat([{ role: 'user', content: prompt }], { responseFormat, maxTokens, signal: controller.signal })) {
              text += p.text;
              if (++n === abortAfter) controller.abort();
            }
            out.push({ text, finish: gen.stats.finishReason });
          } catch (e) {
            out.push({ code: e.code, message: e.message });
          }
        }
      } finally {
        await gen.dispose();
      }
      window.show(`${url} (worker: ${worker}): ${out.length} requests`);
      return out;
    },
    [`/${MODELS[model]}`, worker, requests],
  );
}

// Every schema on SmolLM2; a few of different kinds on Gemma 3 (Node runs
// all on both) and in Worker mode, where the transport differs, not the model.
for (const [model, worker, all] of [['smollm2', false, true], ['gemma3', false, false], ['smollm2', true, false]]) {
  const chosen = all ? schemas : schemas.filter((s) => FEW.includes(s.name));
  test(`${model}${worker ? ' in Worker mode' : ''}: every reply under a JSON schema validates (${chosen.length} schemas)`, async () => {
    const replies = await inPage(model, worker, chosen.map(({ prompt, schema }) => ({ prompt, maxTokens: 400, responseFormat: { type: 'json_schema', schema } })));
    const ajv = schemaValidator();
    chosen.forEach(({ name, schema }, i) => {
      const { text, finish, code, message } = replies[i];
      assert.equal(code, undefined, `${name}: ${code}: ${message}`);
      assert.equal(finish, 'end_of_generation', `${name}: ${text}`);
      assert.ok(ajv.validate(schema, JSON.parse(text)), `${name}: ${text}: ${ajv.errorsText()}`);
    });
  });
}

test('a regex, a GBNF grammar, a rejected schema, and an abort that leaves the generator usable', async () => {
  const nested = schemas.find((s) => s.name === 'deeply nested').schema;
  const [year, list, rejected, aborted, after] = await inPage('smollm2', false, [
    { prompt: 'When was the Eiffel Tower built?', maxTokens: 20, responseFormat: { type: 'regex', pattern: '[0-9]{4}' } },
    { prompt: 'Name three colours.', maxTokens: 40, responseFormat: { type: 'grammar', grammar: 'root ::= item ("," " "? item){2}\nitem ::= [a-z]+' } },
    { prompt: 'Hi', maxTokens: 20, responseFormat: { type: 'json_schema', schema: { $ref: '#/$defs/missing' } } },
    { prompt: 'A company as JSON.', maxTokens: 400, abortAfter: 3, responseFormat: { type: 'json_schema', schema: nested } },
    { prompt: 'Yes or no?', maxTokens: 5, responseFormat: { type: 'regex', pattern: 'yes|no' } },
  ]);
  assert.match(year.text, /^[0-9]{4}$/);
  assert.match(list.text, /^[a-z]+(, ?[a-z]+){2}$/);
  assert.equal(rejected.code, 'INVALID_ARGUMENT', rejected.message);
  assert.equal(aborted.code, 'ABORTED', aborted.message);
  assert.match(after.text, /^(yes|no)$/);
});
