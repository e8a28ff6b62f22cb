#!/usr/bin/env node
// webslm run <model.gguf> "<prompt>" [--chat] [--system S] [--max-tokens N] [--temperature T]
//   [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--stop S]... [--context N] [--json]
// webslm tokenize <model.gguf> ["<text>"] [--file F] [--cases] [--add-special] [--parse-special]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { Generator, Tokenizer } from '../index.js';

const usage = `usage: webslm run <model.gguf | URL> "<prompt>" [--chat] [--system S] [--max-tokens N]
  [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
  [--stop S]... [--context N] [--json]
       webslm tokenize <model.gguf | URL> ["<text>"] [--file F] [--cases] [--add-special] [--parse-special]
  prints the ids of the text (else of file F, else of standard input) on one line, reading
  only the file's header (a vocabulary-only GGUF is enough); --cases: the text is
  llama.cpp's tokenizer-suite input (cases split on "\\n__ggml_vocab_test__\\n"), one
  line of ids per case, as its .out files`;

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
      file: { type: 'string' },
      cases: { type: 'boolean' },
      'add-special': { type: 'boolean' },
      'parse-special': { type: 'boolean' },
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
if (command === 'tokenize') await tokenize();
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

/** `webslm tokenize`: exits when done. */
async function tokenize() {
  if (!model || positionals.length > 3 || (prompt !== undefined && v.file !== undefined)) {
    fail('expected: tokenize <model> ["<text>" | --file F]');
  }
  try {
    const text = prompt ?? readFileSync(v.file ?? 0, 'utf8');
    const tokenizer = await Tokenizer.load(model);
    const options = { addSpecial: v['add-special'] ?? false, parseSpecial: v['parse-special'] ?? false };
    if (v.cases) {
      // As llama.cpp's tests/test-tokenizer-0.cpp: a separator at the very end opens no case.
      const cases = text.split('\n__ggml_vocab_test__\n');
      if (cases.at(-1) === '') cases.pop();
      for (const c of cases) process.stdout.write(`${tokenizer.tokenize(c, options).map((id) => ` ${id}`).join('')}\n`);
    } else {
      process.stdout.write(`${tokenizer.tokenize(text, options).join(' ')}\n`);
    }
    tokenizer.dispose();
    process.exit(0);
  } catch (e) {
    process.stderr.write(`error [${e.code ?? 'INTERNAL'}]: ${e.message}\n`);
    process.exit(1);
  }
}
