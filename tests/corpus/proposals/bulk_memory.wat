;; Bulk memory: memory.fill and memory.copy.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (memory.fill (i32.const 0) (i32.const 42) (i32.const 16))
    (memory.copy (i32.const 100) (i32.const 0) (i32.const 16))
    (if (i32.ne (i32.load8_u (i32.const 115)) (i32.const 42)) (then unreachable))))
