// What one benchmark run does with the package, shared by the page
// (benches/page.js) and the Node run (benches/node.mjs) so that both time the
// same thing: a greedy generation from token ids, with the package's own
// stats and the wall-clock time of every piece of the stream.

/**
 * A bias against the model's end-of-generation tokens (`texts`, e.g.
 * SmolLM2's '<|endoftext|>' and '<|im_end|>'). The package has no ignore-EOS
 * option, so they are banned with logitBias, which is what llama.cpp's
 * ignore_eos (used for wllama) does: every run then generates the full count.
 */
export async function banEndOfGeneration(gen, texts) {
  const bias = [];
  for (const text of texts) {
    const ids = await gen.tokenize(text);
    if (ids.length === 1) bias.push([ids[0], -Infinity]);
  }
  return bias;
}

/**
 * Time to first token and decode rate from the stream's timestamps: `start`
 * before the request, `times` at each piece of text. `pieces` tells whether
 * the stream delivered one piece per token.
 */
export function wallFigures(start, times, tokens = times.length) {
  const first = times[0];
  const last = times[times.length - 1];
  return {
    timeToFirstTokenMs: first === undefined ? null : first - start,
    decodeTokensPerSecond: tokens > 1 && last > first ? ((tokens - 1) * 1000) / (last - first) : null,
    totalMs: last === undefined ? null : last - start,
    pieces: times.length,
  };
}

/** The prompt's token ids: `ids` where given, else the model's tokens of `text` with its BOS, as llama.cpp tokenizes a prompt. */
export async function promptIds(gen, { ids, text }) {
  return ids ?? gen.tokenize(text, { addSpecial: true });
}

/**
 * A short request before the timed one, so that it runs on compiled,
 * tiered-up code (and a response format's vocabulary tables are built).
 * Starting at the prompt's second token, it shares no prefix with the timed
 * request, whose prefill the KV cache would otherwise skip.
 */
export function warmup(gen, ids, bias, responseFormat) {
  return generate(gen, ids.slice(1, 33), 8, bias, responseFormat);
}

/**
 * One greedy generation of `maxTokens` after `ids` (under `responseFormat`
 * where given): the package's stats, the wall-clock figures and the token
 * count.
 */
export async function generate(gen, ids, maxTokens, logitBias, responseFormat) {
  const times = [];
  const start = performance.now();
  for await (const _piece of gen.generate(ids, { maxTokens, temperature: 0, logitBias, responseFormat })) times.push(performance.now());
  const stats = gen.stats;
  return {
    promptTokens: stats.promptTokens,
    reusedTokens: stats.reusedTokens,
    generatedTokens: stats.generatedTokens,
    finishReason: stats.finishReason,
    prefillTokensPerSecond: stats.prefillTokensPerSecond,
    decodeTokensPerSecond: stats.decodeTokensPerSecond,
    timeToFirstTokenMs: stats.timeToFirstTokenMs,
    constraintMs: stats.constraintMs,
    wall: wallFigures(start, times),
  };
}
