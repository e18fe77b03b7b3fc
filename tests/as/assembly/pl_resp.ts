// pl_resp.ts - an Otoroshi response transformer (`transform_response`) in
// AssemblyScript, shaped like Otoroshi's JS test plugin: status config.status
// (default 200), the backend's headers (otoroshi_response.headers) plus
// x-as-resp: yes, and body_json {"status": <the backend's status>, "body":
// "<the backend's body as text>"}. For test_pipeline.sh.
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

function bytesToString(arr: JSON.Arr | null): string {
  if (arr == null) return "";
  const vals = arr.valueOf();
  const buf = new Uint8Array(vals.length);
  for (let i = 0; i < vals.length; i++) buf[i] = <u8>(<JSON.Integer>vals[i]).valueOf();
  return String.UTF8.decode(buf.buffer);
}

export function transform_response(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const config = context.getObj("config");
  const resp = context.getObj("otoroshi_response");
  let status: i64 = 200;
  if (config != null) {
    const s = config.getInteger("status");
    if (s != null) status = s.valueOf();
  }
  let orig: i64 = 0;
  let headers = new JSON.Obj();
  if (resp != null) {
    const s = resp.getInteger("status");
    if (s != null) orig = s.valueOf();
    const h = resp.getObj("headers");
    if (h != null) headers = h;
  }
  headers.set("x-as-resp", "yes");
  const body = new JSON.Obj();
  body.set("status", orig);
  body.set("body", bytesToString(context.getArr("response_body_bytes")));
  const out = new JSON.Obj();
  out.set("status", status);
  out.set("headers", headers);
  out.set("body_json", body);
  outputString(out.stringify());
  return 0;
}
