// node_bench.mjs TRANSPILED.js EVENTS once|fresh - the Node reference of the
// `component` bench section: the kiln:faas handler component transpiled by
// `jco transpile --instantiation async`, run under Node with
// @bytecodealliance/preview2-shim (tests/components' lockfile). `once`:
// instantiate once, call `handle` EVENTS times; `fresh`: a new instance per
// event (the core modules compiled once, as Kiln's cache does).
// Prints: node-MODE events/s p50_us p99_us
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [js, n, mode] = [resolve(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const dir = dirname(js);
const shim = await import(pathToFileURL(
  createRequire(join(dir, 'x.js')).resolve('@bytecodealliance/preview2-shim')).href);
const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const imports = new Proxy({}, {
  get(_, key) {
    const m = /^wasi:([a-z]+)\/([a-z-]+)$/.exec(key);
    return m && shim[m[1]] ? shim[m[1]][camel(m[2])] : undefined;
  },
});
const compiled = new Map();
const getCoreModule = (name) => {
  if (!compiled.has(name)) compiled.set(name, WebAssembly.compile(readFileSync(join(dir, name))));
  return compiled.get(name);
};
const { instantiate } = await import(pathToFileURL(js).href);
const event = {
  eventType: 'object-added', eventTimestamp: { seconds: 1700000000n, nanoseconds: 5 },
  eventVersion: '1', source: 'kv:bench', key: 'k', payload: new Uint8Array([1, 2, 3, 4]),
};
let inst = await instantiate(getCoreModule, imports);
// `once` stays synchronous: no promise per event in the measured loop.
const once = () => inst.handle(event); // returns for ok, throws for an error result
const fresh = async () => {
  inst = await instantiate(getCoreModule, imports);
  inst.handle(event);
};
for (let i = 0; i < 200; i++) mode === 'fresh' ? await fresh() : once();
const lat = new Float64Array(n);
const t0 = process.hrtime.bigint();
if (mode === 'fresh') {
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    await fresh();
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
} else {
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    once();
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
}
const total = Number(process.hrtime.bigint() - t0) / 1e9;
lat.sort();
console.log(`node-${mode} ${Math.round(n / total)} ${lat[n >> 1].toFixed(2)} ${lat[Math.floor(n * 0.99)].toFixed(2)}`);
