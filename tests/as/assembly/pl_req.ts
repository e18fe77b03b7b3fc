// pl_req.ts - an Otoroshi request transformer (`transform_request`) in
// AssemblyScript, shaped like Otoroshi's JS test plugin: it returns the
// plugin-side request it was given (otoroshi_request: url, method, headers,
// ...) with the method set to config.method (default "POST"), two headers
// added (x-as: assemblyscript, content-type: application/json) and body_json
// {"foo": "bar", "was": "<the original body as text, or empty>"}. The url is
// passed back as received (an absolute URL). For test_pipeline.sh.
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

// Otoroshi's body arrays hold signed bytes.
function bytesToString(arr: JSON.Arr | null): string {
  if (arr == null) return "";
  const vals = arr.valueOf();
  const buf = new Uint8Array(vals.length);
  for (let i = 0; i < vals.length; i++) buf[i] = <u8>(<JSON.Integer>vals[i]).valueOf();
  return String.UTF8.decode(buf.buffer);
}

export function transform_request(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const config = context.getObj("config");
  const req = context.getObj("otoroshi_request");
  const out = req == null ? new JSON.Obj() : req;
  let method = "POST";
  if (config != null) {
    const m = config.getString("method");
    if (m != null) method = m.valueOf();
  }
  out.set("method", method);
  let headers = out.getObj("headers");
  if (headers == null) {
    headers = new JSON.Obj();
    out.set("headers", headers);
  }
  headers.set("x-as", "assemblyscript");
  headers.set("content-type", "application/json");
  const body = new JSON.Obj();
  body.set("foo", "bar");
  body.set("was", bytesToString(context.getArr("request_body_bytes")));
  out.set("body_json", body);
  outputString(out.stringify());
  return 0;
}
