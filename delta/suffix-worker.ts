/** Worker thread body: builds the suffix array of the bytes passed as workerData and sends it back. */
import { parentPort, workerData } from 'node:worker_threads';

import { buildSuffixArray } from './suffix-array.js';

const suffixes = buildSuffixArray(workerData as Uint8Array);
parentPort!.postMessage(suffixes, [suffixes.buffer as ArrayBuffer]);
