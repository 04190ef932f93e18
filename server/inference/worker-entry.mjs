// Worker threads start from plain JavaScript: register tsx's loader in this thread, then load
// the TypeScript worker. Works whether the server runs under `tsx` or `node --import tsx`.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
