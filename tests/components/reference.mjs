// reference.mjs CASES: the reference implementation side of
// tests/integration/test_component_reference.sh. Each CASES line is
//   NAME TRANSPILED_JS WITDIR EXPORT JSON_ARGS
// (the first four without spaces; '#' starts a comment line): the component
// transpiled by `jco transpile --instantiation async` into TRANSPILED_JS is
// instantiated afresh under Node with @bytecodealliance/preview2-shim (as
// Kiln makes a fresh instance per call), EXPORT is called with JSON_ARGS,
// and one line is printed:
//   NAME<TAB>RESULT
// RESULT is the result in Kiln's JSON form (`kiln call --input-json`,
// docs/internals/component.md "JSON mapping"), or `trap` when the call
// trapped. Conversions between that form and jco's JS values are
// type-directed: the types come from the WIT files under WITDIR (a small
// parser for the WIT subset the test worlds use).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as shim from '@bytecodealliance/preview2-shim';

// ---- WIT: types and exported functions, by name ----------------------------
function witFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...witFiles(p));
    else if (e.endsWith('.wit')) out.push(p);
  }
  return out;
}

function tokenize(src) {
  src = src.replace(/\/\/[^\n]*/g, ' ').replace(/\/\*[\s\S]*?\*\//g, ' ');
  return src.match(/->|%?[A-Za-z0-9_-]+|\S/g) || [];
}

// Types: {k: 'prim', name} | {k: 'list'|'option', t} | {k: 'tuple', ts} |
// {k: 'result', ok, err} | {k: 'ref', name} (a named type, resolved late) |
// {k: 'record', fields: [[name, t]]} | {k: 'variant', cases: [[name, t|null]]} |
// {k: 'enum', labels} | {k: 'flags', labels} | {k: 'resource'} | {k: 'handle'}.
const PRIMS = new Set(['bool', 's8', 'u8', 's16', 'u16', 's32', 'u32', 's64', 'u64',
                       'f32', 'f64', 'char', 'string']);

function parseWit(dir) {
  const types = new Map();
  const funcs = new Map();
  for (const f of witFiles(dir)) {
    const t = tokenize(readFileSync(f, 'utf8'));
    let i = 0;
    const expect = (s) => {
      if (t[i] !== s) throw new Error(`${f}: expected '${s}' at token ${i}, got '${t[i]}'`);
      i++;
    };
    const name = () => t[i++].replace(/^%/, '');
    const skipTo = (s) => { while (i < t.length && t[i] !== s) i++; i++; };
    const type = () => {
      const n = name();
      if (PRIMS.has(n)) return { k: 'prim', name: n };
      if (n === 'list' || n === 'option') { expect('<'); const e = type(); expect('>'); return { k: n, t: e }; }
      if (n === 'own' || n === 'borrow') { expect('<'); name(); expect('>'); return { k: 'handle' }; }
      if (n === 'tuple') {
        expect('<'); const ts = [type()];
        while (t[i] === ',') { i++; ts.push(type()); }
        expect('>'); return { k: 'tuple', ts };
      }
      if (n === 'result') {
        if (t[i] !== '<') return { k: 'result', ok: null, err: null };
        i++;
        let ok = null, err = null;
        if (t[i] === '_') i++; else ok = type();
        if (t[i] === ',') { i++; err = type(); }
        expect('>'); return { k: 'result', ok, err };
      }
      return { k: 'ref', name: n };
    };
    const list = (item) => { // { item, item, } -> [...]
      expect('{'); const out = [];
      while (t[i] !== '}') { out.push(item()); if (t[i] === ',') i++; }
      i++; return out;
    };
    const func = () => { // after 'func'
      expect('('); const params = [];
      while (t[i] !== ')') { const p = name(); expect(':'); params.push([p, type()]); if (t[i] === ',') i++; }
      i++;
      let result = null;
      if (t[i] === '->') { i++; result = type(); }
      expect(';'); return { params, result };
    };
    while (i < t.length) {
      const w = t[i++];
      if (w === 'record') {
        const n = name();
        types.set(n, { k: 'record', fields: list(() => { const f2 = name(); expect(':'); return [f2, type()]; }) });
      } else if (w === 'variant') {
        const n = name();
        types.set(n, { k: 'variant', cases: list(() => {
          const c = name();
          if (t[i] !== '(') return [c, null];
          i++; const p = type(); expect(')'); return [c, p];
        }) });
      } else if (w === 'enum' || w === 'flags') {
        const n = name();
        types.set(n, { k: w, labels: list(name) });
      } else if (w === 'resource') {
        types.set(name(), { k: 'resource' });
        if (t[i] === '{') { let d = 0; do { if (t[i] === '{') d++; if (t[i] === '}') d--; i++; } while (d > 0); }
        else i++;
      } else if (w === 'type') {
        const n = name(); expect('='); types.set(n, type()); expect(';');
      } else if (w === 'export' && t[i + 1] === ':' && t[i + 2] === 'func') {
        const n = name(); i += 2; funcs.set(n, func());
      } else if (w === 'package' || w === 'use' || w === 'import' || w === 'export' || w === 'include') {
        skipTo(';');
      }
    }
  }
  const resolve = (ty) => {
    for (let d = 0; ty && ty.k === 'ref'; d++) {
      if (!types.has(ty.name) || d > 64) throw new Error(`${dir}: unknown type ${ty.name}`);
      ty = types.get(ty.name);
    }
    return ty;
  };
  return { funcs, resolve };
}

// ---- Kiln's JSON form <-> jco's JS values ------------------------------------
const camel = (s) => s.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const TYPED = { u8: Uint8Array, s8: Int8Array, u16: Uint16Array, s16: Int16Array,
                u32: Uint32Array, s32: Int32Array, f32: Float32Array, f64: Float64Array,
                u64: BigUint64Array, s64: BigInt64Array };
const float = (j) => (j === 'nan' ? NaN : j === 'inf' ? Infinity : j === '-inf' ? -Infinity : Number(j));
// JSON.parse, with integer literals of 16 digits or more kept exact as
// strings (s64/u64 take them through BigInt; a double would round them).
const parseJson = (text) => JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|(?<![\d.])-?\d{16,}(?![.eE\d])/g,
                                                    (m) => (m[0] === '"' ? m : `"${m}"`)));

function toJs(R, ty, j) {
  ty = R(ty);
  switch (ty.k) {
  case 'prim':
    if (ty.name === 's64' || ty.name === 'u64') return BigInt(j);
    if (ty.name === 'f32' || ty.name === 'f64') return float(j);
    return j;
  case 'list': {
    const e = R(ty.t);
    const vals = j.map((x) => toJs(R, e, x));
    return e.k === 'prim' && TYPED[e.name] ? TYPED[e.name].from(vals) : vals;
  }
  case 'tuple': return ty.ts.map((t2, k) => toJs(R, t2, j[k]));
  case 'record': {
    const o = {};
    for (const [f, t2] of ty.fields) o[camel(f)] = toJs(R, t2, j[f]);
    return o;
  }
  case 'variant': {
    const [c, v] = typeof j === 'string' ? [j, null] : Object.entries(j)[0];
    const cs = ty.cases.find(([n]) => n === c);
    return cs[1] ? { tag: c, val: toJs(R, cs[1], v) } : { tag: c };
  }
  case 'enum': return j;
  case 'option': return j === null ? undefined : toJs(R, ty.t, j);
  case 'result': {
    const [c, v] = Object.entries(j)[0];
    const t2 = c === 'ok' ? ty.ok : ty.err;
    return { tag: c === 'ok' ? 'ok' : 'err', val: t2 ? toJs(R, t2, v) : undefined };
  }
  case 'flags': {
    const o = {};
    for (const l of ty.labels) o[camel(l)] = j.includes(l);
    return o;
  }
  default: throw new Error(`no JSON mapping for ${ty.k}`);
  }
}

// Canonical JSON text; integers of 64-bit types stay exact (BigInt).
function fromJs(R, ty, v) {
  ty = R(ty);
  switch (ty.k) {
  case 'prim':
    if (ty.name === 's64' || ty.name === 'u64') {
      const b = BigInt(v);
      return b > 9223372036854775807n ? `"${b}"` : `${b}`;
    }
    if (ty.name === 'f32' || ty.name === 'f64') {
      if (Number.isNaN(v)) return '"nan"';
      if (v === Infinity) return '"inf"';
      if (v === -Infinity) return '"-inf"';
      if (Object.is(v, -0)) return '-0.0'; // JSON.stringify drops the sign; Kiln keeps it
      return JSON.stringify(v);
    }
    return JSON.stringify(v);
  case 'list': return `[${Array.from(v, (x) => fromJs(R, ty.t, x)).join(',')}]`;
  case 'tuple': return `[${ty.ts.map((t2, k) => fromJs(R, t2, v[k])).join(',')}]`;
  case 'record':
    return `{${ty.fields.map(([f, t2]) => `${JSON.stringify(f)}:${fromJs(R, t2, v[camel(f)])}`).join(',')}}`;
  case 'variant': {
    const cs = ty.cases.find(([n]) => n === v.tag);
    return `{${JSON.stringify(v.tag)}:${cs[1] ? fromJs(R, cs[1], v.val) : 'null'}}`;
  }
  case 'enum': return JSON.stringify(v);
  case 'option': return v === undefined || v === null ? 'null' : fromJs(R, ty.t, v);
  case 'result': {
    const t2 = v.tag === 'ok' ? ty.ok : ty.err;
    return `{"${v.tag === 'ok' ? 'ok' : 'error'}":${t2 ? fromJs(R, t2, v.val) : 'null'}}`;
  }
  case 'flags': return `[${ty.labels.filter((l) => v[camel(l)]).map((l) => JSON.stringify(l)).join(',')}]`;
  default: throw new Error(`no JSON mapping for ${ty.k}`);
  }
}

// ---- running a case -------------------------------------------------------
// Imports by interface: WASI 0.2 from preview2-shim, kiln:cli/log as Kiln's
// `kiln call` provides it (a line on stderr).
const imports = new Proxy({}, {
  get(_, key) {
    if (key === 'kiln:cli/log') return { log: (m) => process.stderr.write(`log: ${m}\n`) };
    const m = /^wasi:([a-z]+)\/([a-z-]+)$/.exec(key);
    return m && shim[m[1]] ? shim[m[1]][camel(m[2])] : undefined;
  },
});
const coreModules = new Map();
const getCoreModule = (dir) => (name) => {
  const p = join(dir, name);
  if (!coreModules.has(p)) coreModules.set(p, WebAssembly.compile(readFileSync(p)));
  return coreModules.get(p);
};
const wits = new Map();

async function runCase(js, witDir, exportName, args) {
  if (!wits.has(witDir)) wits.set(witDir, parseWit(witDir));
  const { funcs, resolve } = wits.get(witDir);
  const fn = funcs.get(exportName);
  if (!fn) throw new Error(`${witDir}: no exported function ${exportName}`);
  const { instantiate } = await import(pathToFileURL(js).href);
  const exports = await instantiate(getCoreModule(dirname(js)), imports);
  const jsArgs = fn.params.map(([, t], k) => toJs(resolve, t, args[k]));
  const r = fn.result && resolve(fn.result);
  try {
    const v = exports[camel(exportName)](...jsArgs);
    if (!r) return 'null';
    // jco returns a top-level result's ok value and throws its error.
    return r.k === 'result' ? fromJs(resolve, r, { tag: 'ok', val: v }) : fromJs(resolve, r, v);
  } catch (e) {
    if (r && r.k === 'result' && e && e.constructor && e.constructor.name === 'ComponentError' &&
        'payload' in e)
      return fromJs(resolve, r, { tag: 'err', val: e.payload });
    if (process.env.REFERENCE_DEBUG) console.error(e);
    return 'trap';
  }
}

for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.trim() || line.startsWith('#')) continue;
  const m = /^(\S+) (\S+) (\S+) (\S+) ?(.*)$/.exec(line);
  const [, name, js, witDir, exportName, json] = m;
  let out;
  try {
    out = await runCase(js, witDir, exportName, json ? parseJson(json) : []);
  } catch (e) {
    out = `error: ${String(e.message || e).split('\n')[0]}`;
  }
  console.log(`${name}\t${out}`);
}
