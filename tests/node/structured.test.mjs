// Structured output in Node, the engine on the calling thread, then in a
// Worker (SmolLM2 there: what differs is the transport, not the model).
import { describe } from 'node:test';
import { structured } from './structured.mjs';

describe('main thread', () => structured({ worker: false }));
describe('worker', () => structured({ worker: true, models: ['smollm2'] }));
