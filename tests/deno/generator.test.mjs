// The npm package in Deno 2 with the engine on the main thread: the scenarios
// of tests/node/scenarios.mjs, through Deno's node:test.
import { scenarios } from '../node/scenarios.mjs';

scenarios({ worker: false });
