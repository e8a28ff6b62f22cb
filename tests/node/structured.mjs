// Structured output through the npm package: every reply under a JSON schema
// (tests/fixtures/schemas.json) parses and validates with Ajv (not the
// llguidance that produced it), on SmolLM2 and Gemma 3; regexes, Lark and
// GBNF grammars; formats llguidance rejects; aborts; OpenAI's
// response_format. structured() registers them as node:test tests; Node runs
// them from structured.test.mjs, Deno from tests/deno/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Generator } from '../../pkg/index.js';
import { root, collect, rejectsWith } from './scenarios.mjs';

export const schemas = JSON.parse(await readFile(new URL('tests/fixtures/schemas.json', root)));
/** A few schemas of different kinds, for runs where the transport differs rather than the model (Worker mode). */
export const FEW = ['nested objects', 'array of objects', 'anyOf', 'date and email formats'];
export const MODELS = { smollm2: 'models/SmolLM2-135M-Instruct.Q4_1.gguf', gemma3: 'models/gemma-3-270m-q4_k_m.gguf' };

/** Ajv for JSON Schema 2020-12 with its formats. */
export function schemaValidator() {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  // JSON Schema's `email` is RFC 5321's Mailbox, whose domain needs no
  // dot (`a@localhost`); ajv-formats asks for one. As the RFC has it:
  const atom = "[a-zA-Z0-9!#$%&'*+\\-/=?^_`{|}~]+";
  const label = '[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?';
  ajv.addFormat('email', new RegExp(`^${atom}(\\.${atom})*@(${label}(\\.${label})*|\\[[0-9.]+\\])$`));
  return ajv;
}

/** The text of a chat reply and why it ended. */
async function reply(gen, prompt, options) {
  const pieces = await collect(gen.chat([{ role: 'user', content: prompt }], options));
  return { text: pieces.map((p) => p.text).join(''), finish: gen.stats.finishReason };
}

/**
 * Registers the tests with the engine in a Worker or not: the schemas named
 * in `only` (all by default) on `models` (both by default); the others use
 * SmolLM2.
 */
export function structured({ worker = false, models = Object.keys(MODELS), only } = {}) {
  const chosen = only ? schemas.filter((s) => only.includes(s.name)) : schemas;
  const gens = {};
  before(async () => {
    for (const name of new Set(['smollm2', ...models])) gens[name] = await Generator.load(new URL(MODELS[name], root).pathname, { worker });
  });
  after(async () => {
    for (const gen of Object.values(gens)) await gen.dispose();
  });

  for (const model of models) {
    test(`${model}: every reply under a JSON schema validates (${chosen.length} schemas)`, async (t) => {
      const ajv = schemaValidator();
      for (const { name, prompt, schema } of chosen) {
        const { text, finish } = await reply(gens[model], prompt, { maxTokens: 400, responseFormat: { type: 'json_schema', schema } });
        // Where the time goes, per schema: the masks' share of the decode.
        const { generatedTokens: n, decodeTokensPerSecond: rate, constraintMs } = gens[model].stats;
        t.diagnostic(`${name}: ${n} tokens, ${rate.toFixed(1)} tok/s, masks ${constraintMs.toFixed(0)} ms (${((100 * constraintMs * rate) / (1000 * n)).toFixed(1)}% of the time a token takes)`);
        assert.equal(finish, 'end_of_generation', `${name}: ${text}`);
        const value = JSON.parse(text);
        const valid = ajv.validate(schema, value);
        assert.ok(valid, `${name}: ${text}: ${ajv.errorsText()}`);
      }
    });
  }

  test('regexes, Lark and GBNF grammars, and any JSON object', async () => {
    const gen = gens.smollm2;
    let { text } = await reply(gen, 'When was the Eiffel Tower built?', { maxTokens: 20, responseFormat: { type: 'regex', pattern: '[0-9]{4}' } });
    assert.match(text, /^[0-9]{4}$/);
    ({ text } = await reply(gen, 'Is water wet?', { maxTokens: 20, responseFormat: { type: 'grammar', grammar: 'start: "The answer is " ("yes" | "no") "."' } }));
    assert.match(text, /^The answer is (yes|no)\.$/);
    const gbnf = 'root ::= item ("," " "? item){2}\nitem ::= [a-z]+';
    ({ text } = await reply(gen, 'Name three colours.', { maxTokens: 40, responseFormat: { type: 'grammar', grammar: gbnf } }));
    assert.match(text, /^[a-z]+(, ?[a-z]+){2}$/);
    ({ text } = await reply(gen, 'Describe a dog.', { maxTokens: 300, responseFormat: { type: 'json_object' } }));
    assert.equal(typeof JSON.parse(text), 'object');
  });

  test('maxTokens first: finishReason max_tokens, the text a prefix', async () => {
    const schema = { type: 'array', items: { type: 'string' }, minItems: 30 };
    const { text, finish } = await reply(gens.smollm2, 'List animals.', { maxTokens: 8, responseFormat: { type: 'json_schema', schema } });
    assert.equal(finish, 'max_tokens');
    assert.ok(text.startsWith('['), text);
  });

  test('a format llguidance rejects is INVALID_ARGUMENT with its message; so is a misshapen one', async () => {
    const gen = gens.smollm2;
    const rejects = (responseFormat, message) => rejectsWith(collect(gen.generate('Hi', { responseFormat })), 'INVALID_ARGUMENT', message);
    await rejects({ type: 'json_schema', schema: { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } } }, /missing/);
    await rejects({ type: 'regex', pattern: '(unclosed' });
    await rejects({ type: 'grammar', grammar: 'root ::= "a' }, /GBNF grammar: unterminated string/);
    await rejects({ type: 'yaml' }, /unknown type `yaml`/);
    await rejects({ type: 'json_schema', schema: '{}' }, /a JSON schema is an object/);
    const { text } = await reply(gen, 'Yes or no?', { maxTokens: 5, responseFormat: { type: 'regex', pattern: 'yes|no' } });
    assert.match(text, /^(yes|no)$/);
  });

  test('an abort during a constrained generation leaves the generator usable', async () => {
    const gen = gens.smollm2;
    const controller = new AbortController();
    const schema = schemas.find((s) => s.name === 'deeply nested').schema;
    const pieces = gen.chat([{ role: 'user', content: 'A company as JSON.' }], { signal: controller.signal, responseFormat: { type: 'json_schema', schema } });
    let n = 0;
    await rejectsWith(
      (async () => {
        for await (const _ of pieces) if (++n === 3) controller.abort();
      })(),
      'ABORTED',
    );
    const { text, finish } = await reply(gen, 'Pick a colour.', { maxTokens: 40, responseFormat: { type: 'json_schema', schema: { enum: ['red', 'green'] } } });
    assert.equal(finish, 'end_of_generation');
    assert.ok(['red', 'green'].includes(JSON.parse(text)), text);
  });

  test("chatCompletions takes OpenAI's response_format, streamed or not", async () => {
    const gen = gens.smollm2;
    const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'], additionalProperties: false };
    const request = { messages: [{ role: 'user', content: 'The capital of France, as JSON.' }], max_tokens: 60, response_format: { type: 'json_schema', json_schema: { name: 'city', strict: true, schema } } };
    const done = await gen.chatCompletions.create(request);
    assert.equal(done.choices[0].finish_reason, 'stop');
    const { city } = JSON.parse(done.choices[0].message.content);
    assert.equal(typeof city, 'string');
    let streamed = '';
    for await (const chunk of await gen.chatCompletions.create({ ...request, stream: true })) streamed += chunk.choices[0].delta.content ?? '';
    assert.equal(streamed, done.choices[0].message.content);
  });
}
