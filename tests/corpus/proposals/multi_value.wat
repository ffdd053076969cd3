;; Multi-value: a function returning two values.
(module
  (memory (export "memory") 1)
  (func $two (result i32 i32) (i32.const 40) (i32.const 2))
  (func (export "_start")
    (if (i32.ne (i32.add (call $two)) (i32.const 42)) (then unreachable))))
