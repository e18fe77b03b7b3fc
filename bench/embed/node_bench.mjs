// bench/embed/node_bench.mjs - the Node side of the embed benchmark: the
// same count_vowels plugin through @extism/extism 2.0.0-rc13 (pinned in
// package-lock.json), in-process (no worker thread, no WASI), one plugin,
// N calls with the same input after a warm-up.
// Usage: node node_bench.mjs PLUGIN.wasm CALLS INPUT
// Prints one line: "<calls> <seconds> <calls/s> <us/call> <last output>".
import { readFileSync } from 'node:fs';
import createPlugin from '@extism/extism';

const [wasmPath, callsArg, input] = process.argv.slice(2);
const calls = Number(callsArg);
const plugin = await createPlugin(
  { wasm: [{ data: readFileSync(wasmPath) }] },
  { useWasi: false, runInWorker: false },
);
let out;
for (let i = 0; i < Math.min(1000, calls); i++) out = await plugin.call('count_vowels', input);
const t0 = process.hrtime.bigint();
for (let i = 0; i < calls; i++) out = await plugin.call('count_vowels', input);
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${calls} ${s.toFixed(4)} ${(calls / s).toFixed(0)} ${((s * 1e6) / calls).toFixed(2)} ${out.text()}`);
await plugin.close();
