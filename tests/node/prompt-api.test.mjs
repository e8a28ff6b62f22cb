// The Prompt API polyfill in Node, on SmolLM2.
import { promptApi } from './prompt-api.mjs';

promptApi({ model: new URL('../../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url).pathname, maxTokens: 48 });
