// wrap.mjs CORE.wasm WITDIR WORLD OUT.wasm [OUT.wit]
// ADAPTER=reactor|command (environment): also adapt the module's WASI
// preview-1 imports with jco's preview-1 adapter (what `jco new
// --wasi-reactor/--wasi-command` do); WITDIR "-" skips `embed` (a command's
// world comes from the adapter). STRING_ENCODING=utf8|utf16|compact-utf16
// (environment): the string encoding of the module's lifts and lowers.
// `jco embed` + `jco new` as library calls (jco_tools.mjs says why).
// Optionally writes the component's WIT as wasm-tools prints it (the
// reference `kiln inspect` is compared with).
import { readFile, writeFile } from 'node:fs/promises';
import { componentEmbed, componentNew, componentWit, adapterUrl } from './jco_tools.mjs';

const [core, witPath, world, out, witOut] = process.argv.slice(2);
const binary = new Uint8Array(await readFile(core));
const kind = process.env.ADAPTER || 'none';
const adapters = [];
if (kind === 'reactor' || kind === 'command')
  adapters.push(['wasi_snapshot_preview1', await readFile(adapterUrl(kind))]);
const stringEncoding = process.env.STRING_ENCODING || 'utf8';
const embedded = witPath === '-' ? binary
  : await componentEmbed({ binary, witPath, world, stringEncoding });
const component = await componentNew(embedded, adapters);
await writeFile(out, component);
if (witOut)
  await writeFile(witOut, await componentWit(component));
