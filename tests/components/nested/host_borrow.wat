;; A host resource crossing into a nested component: the root gets a
;; pollable from wasi:clocks (an own handle of the host's type), lends it to
;; a nested component given the root's wasi:io/poll instance, which asks
;; the host whether it is ready through its own import and drops its borrow;
;; the root then drops the pollable. check() = 1: a 0 ns pollable is ready.
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.ready" (func (param "self" (borrow 0)) (result bool)))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type))
    (export "pollable" (type (eq 0)))
    (export "subscribe-duration" (func (param "when" u64) (result (own 1))))))
  (component $checker
    (import "poll" (instance $p
      (export "pollable" (type (sub resource)))
      (export "[method]pollable.ready" (func (param "self" (borrow 0)) (result bool)))))
    (alias export $p "pollable" (type $T))
    (alias export $p "[method]pollable.ready" (func $ready))
    (core func $ready_l (canon lower (func $ready)))
    (core func $drop (canon resource.drop $T))
    (core instance $hi (export "ready" (func $ready_l)) (export "drop" (func $drop)))
    (core module $m
      (import "h" "ready" (func $ready (param i32) (result i32)))
      (import "h" "drop" (func $drop (param i32)))
      (func (export "check") (param i32) (result i32)
        (local $r i32)
        (local.set $r (call $ready (local.get 0)))
        (call $drop (local.get 0))
        (local.get $r)))
    (core instance $i (instantiate $m (with "h" (instance $hi))))
    (func (export "check") (param "p" (borrow $T)) (result u32)
      (canon lift (core func $i "check"))))
  (instance $c (instantiate $checker (with "poll" (instance $poll))))
  (alias export $c "check" (func $check))
  (alias export $clock "subscribe-duration" (func $sub))
  (core func $sub_l (canon lower (func $sub)))
  (core func $check_l (canon lower (func $check)))
  (core func $drop (canon resource.drop $pollable))
  (core instance $imp
    (export "sub" (func $sub_l))
    (export "check" (func $check_l))
    (export "drop" (func $drop)))
  (core module $om
    (import "c" "sub" (func $sub (param i64) (result i32)))
    (import "c" "check" (func $check (param i32) (result i32)))
    (import "c" "drop" (func $drop (param i32)))
    (func (export "run") (result i32)
      (local $h i32) (local $r i32)
      (local.set $h (call $sub (i64.const 0)))
      (local.set $r (call $check (local.get $h)))
      (call $drop (local.get $h))
      (local.get $r)))
  (core instance $oi (instantiate $om (with "c" (instance $imp))))
  (func (export "run") (result u32) (canon lift (core func $oi "run")))
)
