// Structured output in Node, the engine on the calling thread, then in a
// Worker (SmolLM2 and a few schemas there: what differs is the transport,
// not the model).
import { describe } from 'node:test';
import { structured, FEW } from './structured.mjs';

describe('main thread', () => structured({ worker: false }));
describe('worker', () => structured({ worker: true, models: ['smollm2'], only: FEW }));
