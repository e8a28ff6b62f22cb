// Worker mode in Deno 2, the engine in a module Web Worker: the scenarios of
// tests/node/scenarios.mjs, through Deno's node:test.
import { scenarios } from '../node/scenarios.mjs';

scenarios({ worker: true });
