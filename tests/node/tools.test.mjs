// Tool calls in Node, the engine on the calling thread, then in a Worker
// (SmolLM2 and the Qwen 2.5 template there: what differs is the transport).
import { describe } from 'node:test';
import { tools } from './tools.mjs';

describe('main thread', () => tools({ worker: false }));
describe('worker', () => tools({ worker: true, names: ['smollm2', 'Qwen-Qwen2.5-7B-Instruct.jinja'] }));
