#!/usr/bin/env node
// webslm run <model.gguf> "<prompt>" [--chat] [--system S] [--max-tokens N] [--temperature T]
//   [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--stop S]... [--context N] [--json]
import { parseArgs } from 'node:util';
import { Generator } from '../index.js';

const usage = `usage: webslm run <model.gguf | URL> "<prompt>" [--chat] [--system S] [--max-tokens N]
  [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
  [--stop S]... [--context N] [--json]`;

const number = (name, value) => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name}: ${value} is not a number`);
  return n;
};

function fail(message) {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      chat: { type: 'boolean' },
      system: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      'repeat-penalty': { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string', multiple: true },
      context: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  fail(e.message);
}
const { values: v, positionals } = parsed;
if (v.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const [command, model, prompt] = positionals;
if (command !== 'run' || !model || prompt === undefined || positionals.length > 3) fail('expected: run <model> "<prompt>"');

const options = Object.fromEntries(
  Object.entries({
    maxTokens: number('max-tokens', v['max-tokens']) ?? 256,
    temperature: number('temperature', v.temperature),
    topK: number('top-k', v['top-k']),
    topP: number('top-p', v['top-p']),
    minP: number('min-p', v['min-p']),
    repeatPenalty: number('repeat-penalty', v['repeat-penalty']),
    seed: number('seed', v.seed),
    stop: v.stop,
  }).filter(([, x]) => x !== undefined),
);

const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
try {
  const started = performance.now();
  const gen = await Generator.load(model, { contextLength: number('context', v.context), signal: controller.signal });
  const loadMs = performance.now() - started;
  const messages = [...(v.system ? [{ role: 'system', content: v.system }] : []), { role: 'user', content: prompt }];
  const pieces = v.chat ? gen.chat(messages, { ...options, signal: controller.signal }) : gen.generate(prompt, { ...options, signal: controller.signal });
  let text = '';
  const tokens = [];
  for await (const piece of pieces) {
    text += piece.text;
    tokens.push(piece.token);
    if (!v.json) process.stdout.write(piece.text);
  }
  const stats = gen.stats;
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ text, tokens, stats, loadMs })}\n`);
  } else {
    process.stdout.write('\n');
    process.stderr.write(
      `prompt ${stats.promptTokens} tokens: prefill ${stats.prefillTokensPerSecond.toFixed(1)} tok/s; ` +
        `${stats.generatedTokens} tokens: decode ${stats.decodeTokensPerSecond.toFixed(1)} tok/s; ` +
        `first token after ${stats.timeToFirstTokenMs.toFixed(0)} ms; load ${loadMs.toFixed(0)} ms\n`,
    );
  }
  await gen.dispose();
} catch (e) {
  process.stderr.write(`error [${e.code ?? 'INTERNAL'}]: ${e.message}\n`);
  process.exit(1);
}
