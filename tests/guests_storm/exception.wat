;; exception.wat - a WASI command whose _start throws a Wasm exception that
;; nothing catches (needs wat2wasm --enable-exceptions).
(module
  (tag $boom (param i32))
  (memory (export "memory") 1)
  (func (export "_start")
    (throw $boom (i32.const 42))))
