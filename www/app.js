// The demo chat page: a model picker with download progress and a cache
// list, and a chat whose replies stream in from a Generator running in a
// Worker. Model text is only ever inserted as text, never as HTML.
import { Generator } from '../pkg/index.js';

/** The models the picker offers, served from the repository's models/ folder (scripts/fetch-models.sh fills it). */
const MODELS = {
  smollm2: new URL('../models/SmolLM2-135M-Instruct.Q4_1.gguf', location.href).href,
  gemma3: new URL('../models/gemma-3-270m-q4_k_m.gguf', location.href).href,
};

/** What to do about each error code, in words a person can act on. */
const ADVICE = {
  NO_WEBGPU: 'This browser has no usable WebGPU adapter. Choose CPU under Settings → Backend and load again.',
  OUT_OF_MEMORY: 'Not enough memory for this model. Close other tabs or pick a smaller model.',
  QUOTA_EXCEEDED: 'Browser storage is full. Delete a cached model under “Cached models”, then load again.',
  NETWORK: 'The model could not be downloaded. Check the URL and the connection; loading again resumes where it stopped.',
  INVALID_GGUF: 'That is not a GGUF model file (or it is damaged). Pick a .gguf file.',
  UNSUPPORTED_ARCH:
    'This model architecture is not supported yet. webslm runs llama (SmolLM2, TinyLlama, Llama 3.x), gemma3, qwen2, qwen3, smollm3, phi3, phi2 and gpt2 models.',
  UNSUPPORTED_QUANT: 'This model uses a quantization this engine cannot run. Try a Q4_0, Q4_1, Q4_K_M or Q8_0 file.',
  INTEGRITY: 'The download does not match its checksum and was discarded. Load it again.',
  CONTEXT_OVERFLOW: 'The conversation no longer fits in the model’s context. Start a new chat.',
  BUSY: 'A reply is still being written. Wait for it or press Stop.',
  TOKENIZER: 'This model’s tokenizer is not supported.',
  CHAT_TEMPLATE: 'This model’s chat template could not be rendered.',
  IO: 'The file could not be read.',
  BLOCKED: 'This page’s Content-Security-Policy blocks the engine (see www/README.md for the policy it needs).',
  INTERNAL: 'The engine stopped after an internal error. Load the model again.',
  INVALID_ARGUMENT: 'A setting is out of range. Check the settings.',
};

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  choice: $('model-choice'),
  url: $('model-url'),
  file: $('model-file'),
  drop: $('drop'),
  progress: $('progress'),
  bar: $('progress-bar'),
  progressText: $('progress-text'),
  cancelLoad: $('cancel-load'),
  cached: $('cached'),
  storage: $('storage'),
  messages: $('messages'),
  error: $('error'),
  prompt: $('prompt'),
  send: $('send'),
  stop: $('stop'),
  stats: $('stats'),
  system: $('system'),
  temperature: $('temperature'),
  topP: $('top-p'),
  maxTokens: $('max-tokens'),
  backend: $('backend'),
  threads: $('threads'),
  json: $('json'),
  schema: $('schema'),
};

let gen;
let history = [];
let loading;
let replying;

// ?model= names one of MODELS or any URL.
const requested = new URLSearchParams(location.search).get('model') ?? 'smollm2';
ui.url.value = MODELS[requested] ?? requested;
ui.threads.value = Math.min(navigator.hardwareConcurrency || 1, 4);

function showError(e) {
  if (e?.code === 'ABORTED') return;
  const advice = ADVICE[e?.code];
  ui.error.textContent = `${advice ?? 'Something went wrong.'} (${e?.code ?? 'ERROR'}: ${e?.message ?? e})`;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

const mb = (bytes) => (bytes / 1e6).toFixed(bytes < 1e8 ? 1 : 0);

function formatEta(seconds) {
  if (!Number.isFinite(seconds)) return '';
  return seconds < 60 ? `${Math.ceil(seconds)} s left` : `${Math.ceil(seconds / 60)} min left`;
}

/** Loads `source` (a URL or a File) in a Worker, showing progress; replaces the current model. */
async function load(source) {
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  clearError();
  setChatEnabled(false);
  const name = source instanceof File ? source.name : source;
  ui.choice.value = Object.keys(MODELS).find((key) => MODELS[key] === source) ?? '';
  ui.status.textContent = `Loading ${name}…`;
  ui.progress.hidden = false;
  const started = performance.now();
  let rate;
  const onProgress = ({ phase, loaded, total }) => {
    const seconds = (performance.now() - started) / 1000;
    rate = seconds > 0.5 ? loaded / seconds : rate;
    ui.bar.value = total ? loaded / total : 0;
    const percent = total ? Math.floor((100 * loaded) / total) : 0;
    const verb = phase === 'download' ? 'Downloading' : 'Loading';
    ui.progressText.textContent = `${verb} ${mb(loaded)} / ${mb(total)} MB (${percent}%) ${rate ? formatEta((total - loaded) / rate) : ''}`;
  };
  try {
    const previous = gen;
    gen = undefined;
    await previous?.dispose();
    const threads = Number(ui.threads.value) || undefined;
    gen = await Generator.load(source, { worker: true, device: ui.backend.value, threads, onProgress, signal: controller.signal });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    ui.status.textContent = `${describe(gen.info)} — loaded in ${seconds} s`;
    // Why this backend (device 'auto' measures the GPU against the CPU).
    ui.status.title = gen.info.deviceReason ?? '';
    newChat();
    setChatEnabled(true);
    ui.prompt.focus();
  } catch (e) {
    ui.status.textContent = 'No model loaded.';
    showError(e);
  } finally {
    if (loading === controller) loading = undefined;
    ui.progress.hidden = true;
    refreshCache();
  }
}

function describe(info) {
  const backend = info.backend === 'webgpu' ? `WebGPU (${info.adapter}, ${info.kernels} kernels)` : `CPU ${info.build ?? 'SIMD128'}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  return `${info.name ?? info.architecture} (${info.quantization}) · ${backend}${info.worker ? ' · in a Worker' : ''}`;
}

function setChatEnabled(enabled) {
  ui.prompt.disabled = !enabled;
  ui.send.disabled = !enabled || !!replying;
  ui.stop.disabled = !replying;
}

function newChat() {
  replying?.abort();
  history = [];
  ui.messages.replaceChildren();
  ui.stats.textContent = '';
  clearError();
}

/**
 * Renders `text` into `element` as text: fenced ``` blocks become <pre><code>,
 * everything else stays plain text with its line breaks.
 */
function render(element, text) {
  const parts = text.split(/```[^\n]*\n?/);
  element.replaceChildren(
    ...parts.map((part, i) => {
      if (i % 2 === 0) return document.createTextNode(part);
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      code.textContent = part;
      pre.append(code);
      return pre;
    }),
  );
}

function addMessage(role, text) {
  const item = document.createElement('li');
  item.className = role;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Model';
  const body = document.createElement('div');
  body.className = 'text';
  render(body, text);
  item.append(who, body);
  ui.messages.append(item);
  item.scrollIntoView({ block: 'end' });
  return body;
}

async function send() {
  const text = ui.prompt.value.trim();
  if (!text || !gen || replying) return;
  clearError();
  ui.prompt.value = '';
  history.push({ role: 'user', content: text });
  addMessage('user', text);
  const body = addMessage('assistant', '');
  body.parentElement.classList.add('streaming');
  const controller = new AbortController();
  replying = controller;
  setChatEnabled(true);
  const system = ui.system.value.trim();
  const messages = system ? [{ role: 'system', content: system }, ...history] : history;
  let reply = '';
  let tokens = 0;
  let first;
  try {
    const responseFormat = ui.json.checked ? { type: 'json_schema', schema: schemaOf(ui.schema.value) } : undefined;
    const options = {
      responseFormat,
      maxTokens: Number(ui.maxTokens.value) || 256,
      temperature: Number(ui.temperature.value),
      topP: Number(ui.topP.value),
      // Small models loop without it.
      repeatPenalty: 1.1,
      signal: controller.signal,
      // A long conversation takes a while to read in: say how far it is (Stop works between batches).
      onProgress: ({ done, total }) => {
        if (done < total) ui.stats.textContent = `Reading the conversation: ${done} of ${total} tokens`;
      },
    };
    for await (const piece of gen.chat(messages, options)) {
      first ??= performance.now();
      tokens++;
      reply += piece.text;
      render(body, reply);
      const seconds = (performance.now() - first) / 1000;
      if (seconds > 0) ui.stats.textContent = `${(tokens / seconds).toFixed(1)} tokens/s`;
      body.parentElement.scrollIntoView({ block: 'end' });
    }
  } catch (e) {
    showError(e);
  } finally {
    body.parentElement.classList.remove('streaming');
    if (reply) history.push({ role: 'assistant', content: reply });
    else history.pop();
    replying = undefined;
    setChatEnabled(!!gen);
    showStats();
    ui.prompt.focus();
  }
}

/** The schema field's JSON, or an error that says what is wrong with it. */
function schemaOf(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw Object.assign(new Error(`the JSON schema is not JSON: ${e.message}`), { code: 'INVALID_ARGUMENT' });
  }
}

function showStats() {
  const s = gen?.stats;
  if (!s || !s.promptTokens) return;
  const fresh = s.promptTokens - s.reusedTokens;
  ui.stats.textContent =
    `${s.generatedTokens} tokens · ${s.decodeTokensPerSecond.toFixed(1)} tokens/s · first token after ${Math.round(s.timeToFirstTokenMs)} ms · ` +
    `prefilled ${fresh} new prompt tokens (${s.reusedTokens} reused) at ${s.prefillTokensPerSecond.toFixed(1)} tokens/s`;
}

async function refreshCache() {
  try {
    const [models, estimate] = await Promise.all([Generator.cache.list(), Generator.cache.estimate()]);
    ui.cached.replaceChildren(
      ...models.map((m) => {
        const item = document.createElement('li');
        const label = document.createElement('span');
        label.textContent = `${m.url.split('/').pop()} — ${mb(m.size)} MB${m.complete ? '' : ` (${Math.floor((100 * m.downloaded) / m.size)}% downloaded)`}`;
        label.title = m.url;
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.textContent = 'Delete';
        remove.setAttribute('aria-label', `Delete ${m.url} from the cache`);
        remove.addEventListener('click', async () => {
          await Generator.cache.delete(m.url).catch(showError);
          refreshCache();
        });
        item.append(label, ' ', remove);
        return item;
      }),
    );
    if (!models.length) ui.cached.textContent = 'None yet.';
    const quota = estimate.quota ? ` of ${mb(estimate.quota)} MB available` : '';
    ui.storage.textContent = `(${mb(estimate.models)} MB${quota})`;
  } catch (e) {
    showError(e);
  }
}

ui.choice.addEventListener('change', () => {
  const url = MODELS[ui.choice.value];
  if (url) {
    ui.url.value = url;
    load(url);
  } else {
    ui.url.focus();
  }
});
$('model-form').addEventListener('submit', (event) => {
  event.preventDefault();
  if (ui.url.value.trim()) load(ui.url.value.trim());
});
ui.file.addEventListener('change', () => ui.file.files[0] && load(ui.file.files[0]));
ui.drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.drop.classList.remove('over');
  const file = event.dataTransfer.files[0];
  if (file) load(file);
});
ui.cancelLoad.addEventListener('click', () => loading?.abort());
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
ui.prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
ui.stop.addEventListener('click', () => replying?.abort());
$('new-chat').addEventListener('click', newChat);

// Scoped to the folder above www/ so that it also controls the engine's
// Worker, pkg/worker.js: a worker's script and imports go to the service
// worker whose scope holds the worker's URL, not the page's. The server must
// allow that scope (see README.md).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js', { scope: '../' }).catch((e) => console.warn(`webslm demo: no offline use (${e.message})`));
}
refreshCache();
load(ui.url.value);
