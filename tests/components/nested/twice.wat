;; One nested component instantiated twice: each instance has its own core
;; instances (a counter in its own global). The root lowers both instances'
;; bump into one core module; run() = 10 * (a after two bumps) + (b after
;; one) = 21 when the instances are separate.
(component
  (component $counter
    (core module $m
      (global $n (mut i32) (i32.const 0))
      (func (export "bump") (result i32)
        global.get $n
        i32.const 1
        i32.add
        global.set $n
        global.get $n))
    (core instance $i (instantiate $m))
    (func (export "bump") (result u32) (canon lift (core func $i "bump"))))
  (instance $a (instantiate $counter))
  (instance $b (instantiate $counter))
  (alias export $a "bump" (func $bump_a))
  (alias export $b "bump" (func $bump_b))
  (core func $la (canon lower (func $bump_a)))
  (core func $lb (canon lower (func $bump_b)))
  (core instance $imp (export "a" (func $la)) (export "b" (func $lb)))
  (core module $om
    (import "c" "a" (func $a (result i32)))
    (import "c" "b" (func $b (result i32)))
    (func (export "run") (result i32)
      (local $x i32)
      (drop (call $a))
      (local.set $x (call $a))
      (i32.add (i32.mul (local.get $x) (i32.const 10)) (call $b))))
  (core instance $oi (instantiate $om (with "c" (instance $imp))))
  (func $run (result u32) (canon lift (core func $oi "run")))
  (export "run" (func $run))
  (export "bump-a" (func $bump_a))
)
