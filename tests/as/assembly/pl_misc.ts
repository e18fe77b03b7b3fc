// pl_misc.ts - Otoroshi's other plugin kinds in AssemblyScript, with the
// JSON shapes of Otoroshi's own JS test plugins (otoroshi-abi.md §4.7):
//   matches_route  {"result": true} iff request header foo is "bar";
//   pre_route      {"error": false} when foo is "bar", else {"error": true,
//                  "headers": {"Content-Type": "text/plain"}, "status": 401,
//                  "body": "you're not authorized"};
//   sink_matches   {"result": true} iff the request path starts with
//                  config.prefix;
//   sink_handle    {"status": config.status (default 404),
//                  "headers": {"Content-Type": "application/json",
//                  "X-As-Sink": "yes"}, "body_json": {"origin": <origin>,
//                  "path": <path>}}.
// For test_pipeline.sh.
import { JSON } from "assemblyscript-json/assembly";

@external("extism:host/env", "input_length")
declare function input_length(): i64;
@external("extism:host/env", "input_load_u8")
declare function input_load_u8(off: i64): u8;
@external("extism:host/env", "alloc")
declare function alloc(n: i64): i64;
@external("extism:host/env", "store_u8")
declare function store_u8(p: i64, v: u8): void;
@external("extism:host/env", "output_set")
declare function output_set(p: i64, n: i64): void;

function inputString(): string {
  const n = <i32>input_length();
  const buf = new Uint8Array(n);
  for (let i = 0; i < n; i++) buf[i] = input_load_u8(<i64>i);
  return String.UTF8.decode(buf.buffer);
}

function outputString(s: string): void {
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  const h = alloc(<i64>bytes.length);
  for (let i = 0; i < bytes.length; i++) store_u8(h + <i64>i, bytes[i]);
  output_set(h, <i64>bytes.length);
}

function str(o: JSON.Obj | null, key: string, dflt: string): string {
  if (o == null) return dflt;
  const v = o.getString(key);
  return v == null ? dflt : v.valueOf();
}

function header(context: JSON.Obj, name: string): string {
  const request = context.getObj("request");
  let headers: JSON.Obj | null = null;
  if (request != null) headers = request.getObj("headers");
  return str(headers, name, "");
}

function path(context: JSON.Obj): string {
  return str(context.getObj("request"), "path", "");
}

export function matches_route(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const out = new JSON.Obj();
  out.set("result", header(context, "foo") == "bar");
  outputString(out.stringify());
  return 0;
}

export function pre_route(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const out = new JSON.Obj();
  if (header(context, "foo") == "bar") {
    out.set("error", false);
  } else {
    const headers = new JSON.Obj();
    headers.set("Content-Type", "text/plain");
    out.set("error", true);
    out.set("headers", headers);
    out.set("status", 401);
    out.set("body", "you're not authorized");
  }
  outputString(out.stringify());
  return 0;
}

export function sink_matches(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const prefix = str(context.getObj("config"), "prefix", "/");
  const out = new JSON.Obj();
  out.set("result", path(context).startsWith(prefix));
  outputString(out.stringify());
  return 0;
}

export function sink_handle(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  let status: i64 = 404;
  const config = context.getObj("config");
  if (config != null) {
    const s = config.getInteger("status");
    if (s != null) status = s.valueOf();
  }
  const headers = new JSON.Obj();
  headers.set("Content-Type", "application/json");
  headers.set("X-As-Sink", "yes");
  const body = new JSON.Obj();
  body.set("origin", str(context, "origin", ""));
  body.set("path", path(context));
  const out = new JSON.Obj();
  out.set("status", status);
  out.set("headers", headers);
  out.set("body_json", body);
  outputString(out.stringify());
  return 0;
}
