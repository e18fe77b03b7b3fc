// run_cmd.mjs TRANSPILED.js ARG0 ARGS...: the reference side of `kiln run`
// for a wasi:cli/command component: the component transpiled by `jco
// transpile --instantiation async` runs under Node with
// @bytecodealliance/preview2-shim, with ARG0 ARGS... as its arguments, the
// environment variables named by REFERENCE_ENV (comma-separated) and this
// process's stdin/stdout/stderr. Exit status: as wasi:cli/exit says (the
// shim exits the process), 0 when run returns ok, 1 when it returns err,
// 134 when it traps (as `kiln run`).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as shim from '@bytecodealliance/preview2-shim';
import { _setArgs, _setEnv } from '@bytecodealliance/preview2-shim/cli';

const [js, ...args] = process.argv.slice(2);
_setArgs(args);
const env = {};
for (const k of (process.env.REFERENCE_ENV || '').split(',').filter(Boolean))
  if (k in process.env) env[k] = process.env[k];
_setEnv(env);
const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const imports = new Proxy({}, {
  get(_, key) {
    const m = /^wasi:([a-z]+)\/([a-z-]+)$/.exec(key);
    return m && shim[m[1]] ? shim[m[1]][camel(m[2])] : undefined;
  },
});
const dir = dirname(resolve(js));
const { instantiate } = await import(pathToFileURL(resolve(js)).href);
try {
  const exports = await instantiate((name) => WebAssembly.compile(readFileSync(join(dir, name))),
                                    imports);
  const run = Object.entries(exports).find(([k]) => k.startsWith('run'))?.[1] ?? exports.run;
  run.run(); // a result<_, _> export: returns for ok, throws ComponentError for err
  process.exitCode = 0;
} catch (e) {
  process.exitCode = e && e.constructor && e.constructor.name === 'ComponentError' ? 1 : 134;
}
