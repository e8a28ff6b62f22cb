// Tool calls in Node, the engine on the calling thread, then in a Worker
// (the Qwen 2.5 template on the tiny model there: what differs is the
// transport).
import { describe } from 'node:test';
import { tools } from './tools.mjs';

describe('main thread', () => tools({ worker: false }));
describe('worker', () => tools({ worker: true, names: ['Qwen-Qwen2.5-7B-Instruct.jinja'], loop: false }));
