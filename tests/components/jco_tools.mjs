// jco_tools.mjs - jco-transpile's wasm-tools (componentEmbed, componentNew,
// componentWit, ...) ready to use from a Node script: jco 1.35.0's CLI
// commands `embed`/`new` fail with "No such file or directory" because the
// WASI shim they run under starts with no preopens; giving the shim '/' (as
// issue 13 describes) and calling the library directly works. Used by
// wrap.mjs, witcheck.mjs and examples/component/.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tools = require.resolve('@bytecodealliance/jco-transpile/wasm-tools');
// The shim jco-transpile's wasm-tools imports, wherever npm placed it.
const shim = 'file://' + createRequire(tools).resolve('@bytecodealliance/preview2-shim/filesystem');
(await import(shim))._setPreopens({ '/': '/' });

export const { componentEmbed, componentNew, componentWit } = await import(tools);
// jco's preview-1 adapters, by kind ('reactor' or 'command').
export const adapterUrl = (kind) =>
  new URL(`./node_modules/@bytecodealliance/jco/lib/wasi_snapshot_preview1.${kind}.wasm`,
          import.meta.url);
