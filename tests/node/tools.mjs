// Tool calls through the npm package's chatCompletions: forced and named
// calls validate against the function's parameters (Ajv) with SmolLM2's and
// Gemma 3's templates (neither knows tools: the generic JSON syntax) and
// with llama.cpp's Qwen 2.5, Llama 3.2, Phi-3.5, Mistral Nemo, Mistral
// Small 3.2 and Functionary v3.2 templates on the tiny qwen2 model
// (chatTemplate); a streamed
// call is the same call, its arguments in several deltas; the loop of
// the package README runs a tool and feeds its result back. tools() registers
// them as node:test tests; Node runs them from tools.test.mjs, Deno from
// tests/deno/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Generator } from '../../pkg/index.js';
import { root, rejectsWith } from './scenarios.mjs';
import { MODELS, schemaValidator } from './structured.mjs';

export const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The current time in a time zone',
      parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET', 'PST'] } }, required: ['zone'], additionalProperties: false },
    },
  },
];
export const TEMPLATES = [
  'Qwen-Qwen2.5-7B-Instruct.jinja',
  'meta-llama-Llama-3.2-3B-Instruct.jinja',
  'microsoft-Phi-3.5-mini-instruct.jinja',
  'mistralai-Mistral-Nemo-Instruct-2407.jinja',
  'Mistral-Small-3.2-24B-Instruct-2506.jinja',
  'meetkai-functionary-medium-v3.2.jinja',
];
const question = [{ role: 'user', content: 'What is the weather in Paris?' }];

/** Asserts that `call` calls one of TOOLS (or `name`) with arguments its parameters accept. */
function validCall(call, name) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  const tool = TOOLS.find((t) => t.function.name === call.function.name);
  assert.ok(tool, `no tool ${call.function.name}`);
  if (name) assert.equal(call.function.name, name);
  const ajv = schemaValidator();
  const args = JSON.parse(call.function.arguments);
  assert.ok(ajv.validate(tool.function.parameters, args), `${call.function.name}(${call.function.arguments}): ${ajv.errorsText()}`);
}

/**
 * The calls of a streamed completion, put together from its deltas as
 * OpenAI's clients do, and how many deltas carried arguments. A call's
 * first delta must carry its id, type and name.
 */
async function streamedCalls(stream) {
  const calls = [];
  let finish;
  let content = '';
  let argumentDeltas = 0;
  for await (const chunk of stream) {
    content += chunk.choices[0].delta.content ?? '';
    for (const d of chunk.choices[0].delta.tool_calls ?? []) {
      if (!calls[d.index]) {
        assert.ok(d.id && d.type === 'function' && d.function.name, `a call's first delta: ${JSON.stringify(d)}`);
        calls[d.index] = { id: '', type: d.type, function: { name: '', arguments: '' } };
      }
      calls[d.index].id += d.id ?? '';
      calls[d.index].function.name += d.function?.name ?? '';
      calls[d.index].function.arguments += d.function?.arguments ?? '';
      if (d.function?.arguments) argumentDeltas++;
    }
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  return { calls, finish, content, argumentDeltas };
}

/**
 * Registers the tests with the engine in a Worker or not: the calls
 * checked on `names` (the models and templates; all by default), and,
 * with `loop`, the README's loop on SmolLM2.
 */
export function tools({ worker = false, names = [...Object.keys(MODELS), ...TEMPLATES], loop = true } = {}) {
  const gens = {};
  before(async () => {
    for (const name of new Set([...(loop ? ['smollm2'] : []), ...names])) {
      if (MODELS[name]) {
        gens[name] = await Generator.load(new URL(MODELS[name], root).pathname, { worker });
      } else {
        const chatTemplate = await readFile(new URL(`models/llama.cpp/templates/${name}`, root), 'utf8');
        gens[name] = await Generator.load(new URL('models/tiny-arch/qwen2-Q4_0.gguf', root).pathname, { worker, chatTemplate, contextLength: 2048 });
      }
    }
  });
  after(async () => {
    for (const gen of Object.values(gens)) await gen.dispose();
  });

  for (const name of names) {
    test(`${name}: required and named calls validate; streamed, the same call, its arguments as they grow`, async () => {
      const gen = gens[name];
      const request = { messages: question, tools: TOOLS, max_tokens: 200 };
      const required = await gen.chatCompletions.create({ ...request, tool_choice: 'required' });
      assert.equal(required.choices[0].finish_reason, 'tool_calls');
      const [call] = required.choices[0].message.tool_calls;
      validCall(call);
      const named = { ...request, tool_choice: { type: 'function', function: { name: 'get_time' } } };
      const done = await gen.chatCompletions.create(named);
      validCall(done.choices[0].message.tool_calls[0], 'get_time');
      const { calls, finish, argumentDeltas } = await streamedCalls(await gen.chatCompletions.create({ ...named, stream: true }));
      assert.equal(finish, 'tool_calls');
      assert.equal(calls.length, 1);
      validCall(calls[0], 'get_time');
      assert.deepEqual(calls[0].function, done.choices[0].message.tool_calls[0].function);
      assert.ok(argumentDeltas >= 2, `the arguments came in ${argumentDeltas} delta(s)`);
    });
  }

  if (loop) test("the package README's loop: a call, its result fed back, a reply", async () => {
    const gen = gens.smollm2;
    const weather = ({ city, unit }) => ({ city, temperature: unit === 'celsius' ? 18 : 64, unit });
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await gen.chatCompletions.create({ messages, tools: TOOLS, tool_choice: 'required', max_tokens: 200 });
    const message = first.choices[0].message;
    messages.push(message);
    for (const call of message.tool_calls) {
      const result = call.function.name === 'get_weather' ? weather(JSON.parse(call.function.arguments)) : { zone: 'UTC', time: '12:00' };
      messages.push({ role: 'tool', tool_call_id: call.id, name: call.function.name, content: JSON.stringify(result) });
    }
    const second = await gen.chatCompletions.create({ messages, tools: TOOLS, max_tokens: 200 });
    const reply = second.choices[0];
    if (reply.finish_reason === 'tool_calls') reply.message.tool_calls.forEach((c) => validCall(c));
    else assert.ok(typeof reply.message.content === 'string' && reply.message.content.length > 0, JSON.stringify(reply));
    // Streamed, the same turn (text or calls, as the model chose) out of its deltas.
    const streamed = await streamedCalls(await gen.chatCompletions.create({ messages, tools: TOOLS, max_tokens: 200, stream: true }));
    assert.equal(streamed.finish, reply.finish_reason);
    assert.equal(streamed.content, reply.message.content ?? '');
    assert.deepEqual(streamed.calls.map((c) => c.function), (reply.message.tool_calls ?? []).map((c) => c.function));
  });

  test('bad tools and choices are INVALID_ARGUMENT', async () => {
    const gen = gens[names[0]];
    const create = (request) => gen.chatCompletions.create({ messages: question, max_tokens: 10, ...request });
    await rejectsWith(create({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }), 'INVALID_ARGUMENT', /not among the tools/);
    await rejectsWith(create({ tools: [{ type: 'function', function: {} }] }), 'INVALID_ARGUMENT', /function.name/);
    await rejectsWith(create({ tools: TOOLS, tool_choice: 'always' }), 'INVALID_ARGUMENT', /tool_choice/);
    await rejectsWith(
      (async () => {
        for await (const _ of gen.chat(question, { toolChoice: 'required' }));
      })(),
      'INVALID_ARGUMENT',
      /toolChoice needs tools/,
    );
  });
}
