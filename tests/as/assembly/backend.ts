// backend.ts - an Otoroshi-style WasmBackend in AssemblyScript, no PDK: the
// request arrives as JSON input, and the response is JSON
// {status, headers, body_json}. The method and path are echoed back so a test
// can see the request document really reached the guest.

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

function input(): string {
  const n = <i32>input_length();
  const buf = new Uint8Array(n);
  for (let i = 0; i < n; i++) buf[i] = input_load_u8(<i64>i);
  return String.UTF8.decode(buf.buffer);
}

function output(s: string): void {
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  const h = alloc(<i64>bytes.length);
  for (let i = 0; i < bytes.length; i++) store_u8(h + <i64>i, bytes[i]);
  output_set(h, <i64>bytes.length);
}

// The string value of the first "key":"value" pair in `json` (no escapes:
// enough for method and path in a test).
function field(json: string, key: string): string {
  const k = '"' + key + '":"';
  const at = json.indexOf(k);
  if (at < 0) return "";
  const start = at + k.length;
  const end = json.indexOf('"', start);
  return end < 0 ? "" : json.substring(start, end);
}

export function call_backend(): i32 {
  const req = input();
  output('{"status":201,"headers":{"X-Guest":"assemblyscript"},"body_json":{"method":"' +
         field(req, "method") + '","path":"' + field(req, "path") + '"}}');
  return 0;
}
