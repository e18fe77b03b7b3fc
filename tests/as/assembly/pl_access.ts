// pl_access.ts - an Otoroshi access validator (`access`) in AssemblyScript,
// written like Otoroshi's JS access plugins: parse the context with a JSON
// library (assemblyscript-json), decide, and output
//   {"result": true}  or  {"result": false, "error": {"message", "status"}}.
// Allows iff request header x-role equals config.role; the deny message and
// status come from config.message / config.status (defaults "denied by
// assemblyscript" / 401). For test_pipeline.sh.
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

export function access(): i32 {
  const context = <JSON.Obj>JSON.parse(inputString());
  const config = context.getObj("config");
  const request = context.getObj("request");
  let headers: JSON.Obj | null = null;
  if (request != null) headers = request.getObj("headers");
  const role = str(headers, "x-role", "");
  const out = new JSON.Obj();
  if (role != "" && role == str(config, "role", "")) {
    out.set("result", true);
  } else {
    let status: i64 = 401;
    if (config != null) {
      const s = config.getInteger("status");
      if (s != null) status = s.valueOf();
    }
    const error = new JSON.Obj();
    error.set("message", str(config, "message", "denied by assemblyscript"));
    error.set("status", status);
    out.set("result", false);
    out.set("error", error);
  }
  outputString(out.stringify());
  return 0;
}
