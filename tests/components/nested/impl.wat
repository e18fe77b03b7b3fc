;; A nested component implementing a resource with a destructor, used by
;; the root (the shape wit-bindgen gives an exported resource): make(21)
;; returns an own handle; value(self: borrow) reaches the implementer as
;; the rep itself (21, not a handle) and answers 42; the root's drop of its
;; own handle runs the implementer's destructor. run() = 42 * 10 + drops
;; = 421.
(component
  (component $impl
    (core module $a
      (global $d (export "dropped") (mut i32) (i32.const 0))
      (func (export "dtor") (param i32)
        (global.set $d (i32.add (global.get $d) (i32.const 1)))))
    (core instance $ai (instantiate $a))
    (type $R (resource (rep i32) (dtor (core func $ai "dtor"))))
    (core func $new (canon resource.new $R))
    (core instance $ni (export "new" (func $new)))
    (core module $b
      (import "r" "new" (func $new (param i32) (result i32)))
      (import "a" "dropped" (global $d (mut i32)))
      (func (export "make") (param i32) (result i32) (call $new (local.get 0)))
      (func (export "value") (param $rep i32) (result i32)
        (i32.mul (local.get $rep) (i32.const 2)))
      (func (export "dropped") (result i32) (global.get $d)))
    (core instance $bi (instantiate $b (with "r" (instance $ni)) (with "a" (instance $ai))))
    (export $RE "counter" (type $R))
    (func (export "make") (param "n" u32) (result (own $RE))
      (canon lift (core func $bi "make")))
    (func (export "value") (param "self" (borrow $RE)) (result u32)
      (canon lift (core func $bi "value")))
    (func (export "dropped") (result u32) (canon lift (core func $bi "dropped"))))
  (instance $c (instantiate $impl))
  (alias export $c "counter" (type $C))
  (alias export $c "make" (func $make))
  (alias export $c "value" (func $value))
  (alias export $c "dropped" (func $dropped))
  (core func $lmake (canon lower (func $make)))
  (core func $lvalue (canon lower (func $value)))
  (core func $ldropped (canon lower (func $dropped)))
  (core func $drop (canon resource.drop $C))
  (core instance $imp
    (export "make" (func $lmake))
    (export "value" (func $lvalue))
    (export "dropped" (func $ldropped))
    (export "drop" (func $drop)))
  (core module $om
    (import "c" "make" (func $make (param i32) (result i32)))
    (import "c" "value" (func $value (param i32) (result i32)))
    (import "c" "dropped" (func $dropped (result i32)))
    (import "c" "drop" (func $drop (param i32)))
    (func (export "run") (result i32)
      (local $h i32) (local $v i32)
      (local.set $h (call $make (i32.const 21)))
      (local.set $v (call $value (local.get $h)))
      (call $drop (local.get $h))
      (i32.add (i32.mul (local.get $v) (i32.const 10)) (call $dropped))))
  (core instance $oi (instantiate $om (with "c" (instance $imp))))
  (func (export "run") (result u32) (canon lift (core func $oi "run")))
)
