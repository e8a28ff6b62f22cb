// Tool calls in Deno 2: the cases of tests/node/tools.mjs, the engine on the
// calling thread; the calls through llama.cpp's templates on the tiny model
// (SmolLM2's and Gemma 3's run in Node and Chromium), the README's loop on
// SmolLM2.
import { tools, TEMPLATES } from '../node/tools.mjs';

tools({ worker: false, names: TEMPLATES });
