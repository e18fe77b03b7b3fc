// wrap.mjs CORE.wasm WITDIR WORLD OUT.wasm [OUT.wit]
// ADAPTER=reactor|command (environment): also adapt the module's WASI
// preview-1 imports with jco's preview-1 adapter (what `jco new
// --wasi-reactor/--wasi-command` do); WITDIR "-" skips `embed` (a command's
// world comes from the adapter).
// `jco embed` + `jco new` as a library call: jco 1.35.0's CLI commands fail
// with "No such file or directory" because the WASI shim they run under
// starts with no preopens; giving the shim '/' (as the issue describes) and
// calling jco-transpile's wasm-tools directly works. Optionally writes the
// component's WIT as wasm-tools prints it (the reference `kiln inspect` is
// compared with).
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tools = require.resolve('@bytecodealliance/jco-transpile/wasm-tools');
const shim = new URL('../node_modules/@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js',
                     'file://' + tools).href;
(await import(shim))._setPreopens({ '/': '/' });
const { componentEmbed, componentNew, componentWit } = await import(tools);

const [core, witPath, world, out, witOut] = process.argv.slice(2);
const binary = new Uint8Array(await readFile(core));
const kind = process.env.ADAPTER || 'none';
const adapters = [];
if (kind === 'reactor' || kind === 'command') {
  const jcoLib = new URL('./node_modules/@bytecodealliance/jco/lib/', import.meta.url);
  adapters.push(['wasi_snapshot_preview1',
                 await readFile(new URL(`wasi_snapshot_preview1.${kind}.wasm`, jcoLib))]);
}
const embedded = witPath === '-' ? binary : await componentEmbed({ binary, witPath, world });
const component = await componentNew(embedded, adapters);
await writeFile(out, component);
if (witOut)
  await writeFile(witOut, await componentWit(component));
