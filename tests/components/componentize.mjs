// componentize.mjs SOURCE.js WITDIR WORLD OUT.wasm: build a JavaScript
// component with componentize-js (a dependency of jco 1.35.0, no extra
// package), offline: StarlingMonkey ships inside the package and wizer is
// an npm binary. Its WIT parser runs under preview2-shim too, so the shim
// gets '/' as a preopen first (jco_tools.mjs does that). Only the features
// the handler uses: no stdio, random, clocks or HTTP imports.
import { writeFile } from 'node:fs/promises';
import './jco_tools.mjs';
import { componentize } from '@bytecodealliance/componentize-js';

const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath, witPath, worldName,
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
