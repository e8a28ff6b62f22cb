// The package's Tokenizer, from vocabulary-only GGUF headers, against
// llama.cpp's tokenizer suite and the harder cases of
// tests/fixtures/vocab/extra.inp (as tests/tokenizer_suite.rs does natively),
// and the bin's `tokenize` command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const vocab = (name) => new URL(`models/llama.cpp/ggml-vocab-${name}.gguf`, root).pathname;
/** Each vocabulary, and whose `.inp` it runs where llama.cpp ships no `.out` (tests/fixtures/README.md). */
const SUITE = {
  'bert-bge': null, 'command-r': null, 'deepseek-coder': null, 'deepseek-llm': null, falcon: null, 'gemma-4': null,
  'gpt-2': null, 'llama-bpe': null, 'llama-spm': null, mpt: null, 'phi-3': null, qwen2: null, qwen35: null,
  refact: null, starcoder: null, 'nomic-bert-moe': 'qwen35',
};

const read = (path) => readFile(path, 'utf8').catch(() => assert.fail(`${path} is missing: run scripts/fetch-models.sh`));

/** The cases as test-tokenizer-0 reads them: a separator at the very end opens no case. */
function cases(inp, out) {
  const inputs = inp.split('\n__ggml_vocab_test__\n');
  if (inputs.at(-1) === '') inputs.pop();
  const outputs = out.split('\n').slice(0, inputs.length);
  assert.equal(outputs.length, inputs.length, 'the .inp and .out files hold different numbers of cases');
  return inputs.map((text, i) => [text, outputs[i].trim() === '' ? [] : outputs[i].trim().split(' ').map(Number)]);
}

test("llama.cpp's tokenizer suite: every case of every vocabulary", async () => {
  const fixtures = new URL('tests/fixtures/vocab/', root).pathname;
  const extra = await read(fixtures + 'extra.inp');
  const failures = [];
  for (const [name, inpFrom] of Object.entries(SUITE)) {
    const inp = await read(inpFrom ? vocab(inpFrom) + '.inp' : vocab(name) + '.inp');
    const out = await read(inpFrom ? `${fixtures}ggml-vocab-${name}.gguf.out` : vocab(name) + '.out');
    const tokenizer = await Tokenizer.load(vocab(name));
    const plain = [...cases(inp, out), ...cases(extra, await read(`${fixtures}extra/${name}.out`))];
    const special = cases(extra, await read(`${fixtures}extra/${name}.special.out`));
    for (const [text, ids, flag] of [...plain.map((c) => [...c, false]), ...special.map((c) => [...c, true])]) {
      const got = tokenizer.tokenize(text, { addSpecial: flag, parseSpecial: flag });
      if (JSON.stringify(got) !== JSON.stringify(ids)) failures.push(`${name}: ${JSON.stringify(text)}: expected ${ids}, got ${got}`);
    }
    tokenizer.dispose();
  }
  assert.deepEqual(failures, []);
});

test('the bin tokenizes a text, a file of cases and standard input from a header alone', async () => {
  const bin = new URL('pkg/bin/webslm.js', root).pathname;
  const run = (args, input) =>
    new Promise((resolve) => {
      const child = execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr }));
      child.stdin.end(input ?? '');
    });
  const bge = vocab('bert-bge');
  const words = await run(['tokenize', bge, 'Hello [SEP] world', '--add-special', '--parse-special']);
  assert.equal(words.code, 0, words.stderr);
  assert.equal(words.stdout, '101 7592 102 2088 102\n');
  assert.equal((await run(['tokenize', bge], 'Hello world')).stdout, '7592 2088\n');
  const suite = await run(['tokenize', bge, '--file', bge + '.inp', '--cases']);
  assert.equal(suite.code, 0, suite.stderr);
  assert.equal(suite.stdout, await read(bge + '.out'));
  const bad = await run(['tokenize', '/nonexistent.gguf', 'x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error \[IO\]/);
});
