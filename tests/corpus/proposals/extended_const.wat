;; Extended constant expressions: arithmetic in a global's initializer.
(module
  (memory (export "memory") 1)
  (global $g i32 (i32.add (i32.const 40) (i32.mul (i32.const 1) (i32.const 2))))
  (func (export "_start")
    (if (i32.ne (global.get $g) (i32.const 42)) (then unreachable))))
