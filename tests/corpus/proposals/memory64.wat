;; 64-bit memory: i64 addresses.
(module
  (memory (export "memory") i64 1)
  (func (export "_start")
    (i32.store (i64.const 65532) (i32.const 42))
    (if (i32.ne (i32.load (i64.const 65532)) (i32.const 42)) (then unreachable))))
