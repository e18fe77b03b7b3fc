;; A composed component: the root instantiates a nested component that
;; exports greet(name: string) -> string and imports log(message: string),
;; passes it Kiln's kiln:cli/log, lowers greet into its own core module
;; (a component-to-component call: lift out of the inner memory, lower into
;; the outer one) and exports both greet and run.
(component
  (import "kiln:cli/log@0.1.0" (instance $host (export "log" (func (param "message" string)))))
  (core module $memmod
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      global.get $heap
      local.set $p
      global.get $heap
      local.get 3
      i32.add
      global.set $heap
      local.get $p))

  (component $inner
    (import "log" (func $log (param "message" string)))
    (core module $memmod
      (memory (export "memory") 1)
      (global $heap (mut i32) (i32.const 1024))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        global.get $heap
        local.set $p
        global.get $heap
        local.get 3
        i32.add
        global.set $heap
        local.get $p))
    (core module $im
      (import "mem" "memory" (memory 1))
      (import "mem" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
      (import "host" "log" (func $log (param i32 i32)))
      (data (i32.const 16) "hello, ")
      (func (export "greet") (param $ptr i32) (param $len i32) (result i32)
        (local $out i32)
        (call $log (local.get $ptr) (local.get $len))
        (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                                       (i32.add (i32.const 7) (local.get $len))))
        (memory.copy (local.get $out) (i32.const 16) (i32.const 7))
        (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $ptr) (local.get $len))
        (i32.store (i32.const 0) (local.get $out))
        (i32.store (i32.const 4) (i32.add (i32.const 7) (local.get $len)))
        i32.const 0))
    (core instance $mm (instantiate $memmod))
    (alias core export $mm "memory" (core memory $cmem))
    (alias core export $mm "realloc" (core func $crealloc))
    (core func $log_l (canon lower (func $log) (memory $cmem)))
    (core instance $logi (export "log" (func $log_l)))
    (core instance $ii (instantiate $im (with "host" (instance $logi)) (with "mem" (instance $mm))))
    (func (export "greet") (param "name" string) (result string)
      (canon lift (core func $ii "greet") (memory $cmem) (realloc $crealloc))))

  (alias export $host "log" (func $hlog))
  (instance $in (instantiate $inner (with "log" (func $hlog))))
  (alias export $in "greet" (func $greet))

  (core module $om
    (import "mem" "memory" (memory 1))
    (import "c" "greet" (func $greet (param i32 i32 i32)))
    (func (export "run") (param $p i32) (param $l i32) (result i32)
      (call $greet (local.get $p) (local.get $l) (i32.const 8))
      i32.const 8))
  (core instance $omm (instantiate $memmod))
  (alias core export $omm "memory" (core memory $omem))
  (alias core export $omm "realloc" (core func $orealloc))
  (core func $greet_l (canon lower (func $greet) (memory $omem) (realloc $orealloc)))
  (core instance $ci (export "greet" (func $greet_l)))
  (core instance $oi (instantiate $om (with "mem" (instance $omm)) (with "c" (instance $ci))))
  (func $run (param "name" string) (result string)
    (canon lift (core func $oi "run") (memory $omem) (realloc $orealloc)))
  (export "greet" (func $greet))
  (export "run" (func $run))
)
