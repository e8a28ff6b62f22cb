// Structured output in Deno 2: the cases of tests/node/structured.mjs, the
// engine on the calling thread.
import { structured } from '../node/structured.mjs';

structured({ worker: false });
