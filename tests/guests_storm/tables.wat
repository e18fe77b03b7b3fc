;; tables.wat - four 10M-element funcref tables declared in a few bytes: must be
;; refused at instantiation (max_table_elems / out of memory), not allocated.
(module
  (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
