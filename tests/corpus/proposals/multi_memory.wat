;; Multiple memories: a value stored in the second memory is read back from it only.
(module
  (memory $a (export "memory") 1)
  (memory $b 1)
  (func (export "_start")
    (i32.store $b (i32.const 8) (i32.const 42))
    (if (i32.ne (i32.load $b (i32.const 8)) (i32.const 42)) (then unreachable))
    (if (i32.ne (i32.load $a (i32.const 8)) (i32.const 0)) (then unreachable))))
