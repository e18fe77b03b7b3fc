(module
  (import "env" "ex" (tag $x (param i32)))
  (tag $y (param i64 i64))
  (export "y" (tag $y))
  (func (export "f") (param i32) (result i32 i64) (local.get 0) (i64.const 1)))
