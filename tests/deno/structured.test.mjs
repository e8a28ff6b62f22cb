// Structured output in Deno 2: the cases of tests/node/structured.mjs, the
// engine on the calling thread, with a few schemas of different kinds: Deno
// runs the wasm build Node runs, where every schema runs on both models.
import { structured, FEW } from '../node/structured.mjs';

structured({ worker: false, only: FEW });
