;; A resource the root defines, borrowed by a nested component: the
;; Canonical ABI's borrow scope. run-good: the root makes an own handle,
;; lends it to peek (which drops its borrow before it returns, as every
;; callee must), then drops the own handle (its loan ended with the call) =
;; 7. run-keep: keep returns without dropping its borrow = a trap.
(component
  (type $R (resource (rep i32)))
  (component $peeker
    (import "r" (type $T (sub resource)))
    (core func $drop (canon resource.drop $T))
    (core instance $di (export "drop" (func $drop)))
    (core module $m
      (import "" "drop" (func $drop (param i32)))
      (func (export "peek") (param i32) (result i32)
        local.get 0
        call $drop
        i32.const 7)
      (func (export "keep") (param i32) (result i32)
        i32.const 8))
    (core instance $i (instantiate $m (with "" (instance $di))))
    (func (export "peek") (param "r" (borrow $T)) (result u32)
      (canon lift (core func $i "peek")))
    (func (export "keep") (param "r" (borrow $T)) (result u32)
      (canon lift (core func $i "keep"))))
  (instance $p (instantiate $peeker (with "r" (type $R))))
  (alias export $p "peek" (func $peek))
  (alias export $p "keep" (func $keep))
  (core func $new (canon resource.new $R))
  (core func $drop (canon resource.drop $R))
  (core func $lpeek (canon lower (func $peek)))
  (core func $lkeep (canon lower (func $keep)))
  (core instance $imp
    (export "new" (func $new))
    (export "drop" (func $drop))
    (export "peek" (func $lpeek))
    (export "keep" (func $lkeep)))
  (core module $om
    (import "c" "new" (func $new (param i32) (result i32)))
    (import "c" "drop" (func $drop (param i32)))
    (import "c" "peek" (func $peek (param i32) (result i32)))
    (import "c" "keep" (func $keep (param i32) (result i32)))
    (func (export "run-good") (result i32)
      (local $h i32) (local $r i32)
      (local.set $h (call $new (i32.const 42)))
      (local.set $r (call $peek (local.get $h)))
      (call $drop (local.get $h))
      (local.get $r))
    (func (export "run-keep") (result i32)
      (call $keep (call $new (i32.const 42)))))
  (core instance $oi (instantiate $om (with "c" (instance $imp))))
  (func (export "run-good") (result u32) (canon lift (core func $oi "run-good")))
  (func (export "run-keep") (result u32) (canon lift (core func $oi "run-keep")))
)
