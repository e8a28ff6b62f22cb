// Tool calls in Deno 2: the cases of tests/node/tools.mjs, the engine on the
// calling thread.
import { tools } from '../node/tools.mjs';

tools({ worker: false });
