// greet.ts - an Extism plugin in AssemblyScript without a PDK: the host
// functions are declared with @external. `greet` outputs "Hello, <input>!";
// `boom` fails an assertion, which AssemblyScript reports through
// env.abort (Kiln's Extism host decodes the message and traps).

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

export function greet(): i32 {
  output("Hello, " + input() + "!");
  return 0;
}

export function boom(): i32 {
  assert(input() == "never", "boom from AssemblyScript");
  return 0;
}
