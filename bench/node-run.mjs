// node-run.mjs - the Node.js peer for bench/run.sh: run a wasm32-wasi
// command module with Node's built-in WASI (preview1), like `kiln run`.
// Usage: node --no-warnings bench/node-run.mjs module.wasm [args...]
// The measured time includes Node's start, WebAssembly.compile (Liftoff,
// then TurboFan tiers up in the background) and instantiate.
import { readFile } from 'node:fs/promises';
import { argv, exit } from 'node:process';
import { WASI } from 'node:wasi';

const path = argv[2];
if (path === undefined) {
    console.error('usage: node-run.mjs module.wasm [args...]');
    exit(2);
}
const wasi = new WASI({ version: 'preview1', args: argv.slice(2), env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance) ?? 0);
