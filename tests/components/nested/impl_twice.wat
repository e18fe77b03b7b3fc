;; A component defining a resource, instantiated twice: each instantiation
;; would make a new resource type, which Kiln's flattening cannot tell
;; apart, so it is refused with a message.
(component
  (component $impl
    (type $R (resource (rep i32)))
    (core func $new (canon resource.new $R))
    (core instance $ni (export "new" (func $new)))
    (core module $b
      (import "r" "new" (func $new (param i32) (result i32)))
      (func (export "make") (param i32) (result i32) (call $new (local.get 0))))
    (core instance $bi (instantiate $b (with "r" (instance $ni))))
    (export $RE "counter" (type $R))
    (func (export "make") (param "n" u32) (result (own $RE))
      (canon lift (core func $bi "make"))))
  (instance $a (instantiate $impl))
  (instance $b (instantiate $impl))
  (core module $om (func (export "run") (result i32) (i32.const 0)))
  (core instance $oi (instantiate $om))
  (func (export "run") (result u32) (canon lift (core func $oi "run")))
)
