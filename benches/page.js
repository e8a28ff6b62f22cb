// The benchmark page's side: loads one library (webslm from pkg/, or wllama
// from node_modules/) in this tab and times it. scripts/bench.mjs calls
// load, warmup, generate and reload in turn, reading the renderer's memory
// between them. Both libraries load the model by URL through their own
// cache (webslm: IndexedDB; wllama: the origin private file system).
import * as measure from './measure.mjs';

const WLLAMA = '/node_modules/@wllama/wllama';

let library;

/**
 * Loads the model by `url` with `threads`, `device` and `worker` (webslm), `contextLength`
 * and the texts of its end-of-generation tokens: the load time, where the
 * bytes came from, and what runs.
 */
export async function load({ name, url, threads, device, worker, contextLength, endOfGeneration }) {
  url = new URL(url, location.href).href;
  library = name === 'webslm' ? await webslm(url, { threads, device, worker, contextLength }, endOfGeneration) : await wllama(url, threads, contextLength);
  const loaded = await library.load();
  return { ...loaded, crossOriginIsolated, info: library.info() };
}

/** See measure.warmup. */
export async function warmup({ responseFormat, ...prompt }) {
  await library.warmup(prompt, responseFormat);
}

export async function generate({ maxTokens, responseFormat, ...prompt }) {
  return library.generate(prompt, maxTokens, responseFormat);
}

/**
 * Frees the model and loads it again, now from the library's cache, and
 * generates the prompt's first token: the time from the load call to it is
 * what a returning user waits for a first word.
 */
export async function reload(prompt) {
  await library.free();
  const start = performance.now();
  const loaded = await library.load();
  await library.generate(prompt, 1);
  return { ...loaded, firstTokenMs: performance.now() - start };
}

async function webslm(url, options, endOfGeneration) {
  const { Generator } = await import('/pkg/index.js');
  let gen;
  let bias;
  return {
    async load() {
      let network = false;
      const start = performance.now();
      gen = await Generator.load(url, { ...options, onProgress: (p) => (network ||= p.phase === 'download') });
      const loadMs = performance.now() - start;
      bias = await measure.banEndOfGeneration(gen, endOfGeneration);
      return { loadMs, source: network ? 'network' : 'IndexedDB' };
    },
    info: () => gen.info,
    warmup: async (prompt, responseFormat) => measure.warmup(gen, await measure.promptIds(gen, prompt), bias, responseFormat),
    generate: async (prompt, maxTokens, responseFormat) => measure.generate(gen, await measure.promptIds(gen, prompt), maxTokens, bias, responseFormat),
    free: () => gen.dispose(),
  };
}

async function wllama(url, threads, contextLength) {
  const { Wllama } = await import(`${WLLAMA}/esm/index.js`);
  const version = (await (await fetch(`${WLLAMA}/package.json`)).json()).version;
  const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };
  let w;
  return {
    async load() {
      w = new Wllama({ default: `${WLLAMA}/esm/wasm/wllama.wasm` }, { suppressNativeLog: true, logger: quiet });
      const cached = (await w.modelManager.getModels()).some((m) => m.url === url);
      const start = performance.now();
      // n_gpu_layers 0: the CPU, as webslm runs, even where a WebGPU adapter exists.
      await w.loadModelFromUrl(url, { n_threads: threads, n_ctx: contextLength, n_gpu_layers: 0 });
      return { loadMs: performance.now() - start, source: cached ? 'OPFS' : 'network' };
    },
    info: () => ({ version, threads: w.getNumThreads(), build: w.isMultithread() ? 'multi-thread' : 'single-thread' }),
    async warmup({ text }) {
      // With cache_prompt false every request prefills from scratch: any short text will do.
      await this.generate({ text: text.slice(0, 160) }, 8);
    },
    async generate({ text }, maxTokens) {
      const times = [];
      let last;
      const start = performance.now();
      const stream = await w.createCompletion({ prompt: text, max_tokens: maxTokens, temperature: 0, ignore_eos: true, cache_prompt: false, stream: true });
      for await (const chunk of stream) {
        if (chunk.choices?.[0]?.text) times.push(performance.now());
        last = chunk;
      }
      const t = last.timings;
      return {
        promptTokens: t.prompt_n,
        reusedTokens: t.cache_n,
        generatedTokens: t.predicted_n,
        finishReason: last.choices?.[0]?.finish_reason ?? null,
        prefillTokensPerSecond: t.prompt_per_second,
        decodeTokensPerSecond: t.predicted_per_second,
        // llama.cpp's timings have no time to first token: the table takes the wall clock's.
        timeToFirstTokenMs: null,
        wall: measure.wallFigures(start, times, t.predicted_n),
      };
    },
    free: () => w.exit(),
  };
}
