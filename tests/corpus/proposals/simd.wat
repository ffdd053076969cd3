;; Fixed-width SIMD (v128): a lane-wise add.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.ne
          (i32x4.extract_lane 3 (i32x4.add (v128.const i32x4 1 2 3 40) (v128.const i32x4 1 1 1 2)))
          (i32.const 42))
      (then unreachable))))
