;; Reference types: a funcref stored in a second table with table.set, called through it.
(module
  (memory (export "memory") 1)
  (type $answer (func (result i32)))
  (table $first 1 funcref)
  (table $second 1 funcref)
  (func $forty_two (result i32) (i32.const 42))
  (elem declare func $forty_two)
  (func (export "_start")
    (table.set $second (i32.const 0) (ref.func $forty_two))
    (if (i32.ne (call_indirect $second (type $answer) (i32.const 0)) (i32.const 42)) (then unreachable))))
