// Tool calls in headless Chromium: chatCompletions with tools on SmolLM2
// (the generic JSON syntax) and on the tiny qwen2 model with llama.cpp's
// Qwen 2.5 template (Hermes <tool_call>), on the page's thread and (the
// tiny model) in Worker mode; the calls are checked here as
// tests/node/tools.mjs checks them, the streamed one put together from its
// deltas.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testPage } from './chromium.mjs';
import { TOOLS } from '../node/tools.mjs';
import { schemaValidator } from '../node/structured.mjs';

let opened;
let page;

before(async () => {
  opened = await testPage();
  page = opened.page;
});

after(() => opened?.close());

/** A required call, a named one and the named one streamed, from the model at `url` (with `template` if given). */
function calls(url, template, worker) {
  return page.evaluate(
    async ([url, template, worker, tools]) => {
      const { Generator } = await window.webslm;
      const chatTemplate = template && (await (await fetch(`/models/llama.cpp/templates/${template}`)).text());
      const gen = await Generator.load(url, { worker, cache: false, chatTemplate, contextLength: 2048 });
      try {
        const request = { messages: [{ role: 'user', content: 'What is the weather in Paris?' }], tools, max_tokens: 200 };
        const required = await gen.chatCompletions.create({ ...request, tool_choice: 'required' });
        const named = { ...request, tool_choice: { type: 'function', function: { name: 'get_time' } } };
        const done = await gen.chatCompletions.create(named);
        const deltas = [];
        let finish;
        for await (const chunk of await gen.chatCompletions.create({ ...named, stream: true })) {
          deltas.push(...(chunk.choices[0].delta.tool_calls ?? []));
          finish = chunk.choices[0].finish_reason ?? finish;
        }
        window.show(`${url} ${template ?? ''}: ${JSON.stringify(done.choices[0].message.tool_calls)}`);
        return { required: required.choices[0], named: done.choices[0], deltas, finish };
      } finally {
        await gen.dispose();
      }
    },
    [url, template, worker, TOOLS],
  );
}

function validCall(call, name) {
  const tool = TOOLS.find((t) => t.function.name === call.function.name);
  assert.ok(tool, `no tool ${call.function.name}`);
  if (name) assert.equal(call.function.name, name);
  const ajv = schemaValidator();
  assert.ok(ajv.validate(tool.function.parameters, JSON.parse(call.function.arguments)), `${call.function.name}(${call.function.arguments}): ${ajv.errorsText()}`);
}

for (const [name, url, template, worker] of [
  ['SmolLM2', '/models/SmolLM2-135M-Instruct.Q4_1.gguf', undefined, false],
  ['the tiny qwen2 model with Qwen 2.5\'s template', '/models/tiny-arch/qwen2-Q4_0.gguf', 'Qwen-Qwen2.5-7B-Instruct.jinja', false],
  ['the tiny qwen2 model with Qwen 2.5\'s template in Worker mode', '/models/tiny-arch/qwen2-Q4_0.gguf', 'Qwen-Qwen2.5-7B-Instruct.jinja', true],
]) {
  test(`${name}: forced and named calls validate; streamed, the same call, its arguments as they grow`, async () => {
    const r = await calls(url, template, worker);
    assert.equal(r.required.finish_reason, 'tool_calls');
    validCall(r.required.message.tool_calls[0]);
    assert.equal(r.named.finish_reason, 'tool_calls');
    validCall(r.named.message.tool_calls[0], 'get_time');
    assert.equal(r.finish, 'tool_calls');
    const [first, ...rest] = r.deltas;
    assert.ok(first.id && first.type === 'function' && first.function.name, JSON.stringify(first));
    assert.ok(rest.length >= 2 && rest.every((d) => d.index === 0 && d.function.arguments), JSON.stringify(r.deltas));
    const args = rest.map((d) => d.function.arguments).join('');
    assert.deepEqual({ name: first.function.name, arguments: args }, r.named.message.tool_calls[0].function);
  });
}
