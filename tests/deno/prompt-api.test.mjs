// The Prompt API polyfill in Deno 2, on SmolLM2: tests/node/prompt-api.mjs.
import { promptApi } from '../node/prompt-api.mjs';

promptApi({ model: new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url).pathname, maxTokens: 48 });
