;; Relaxed SIMD: a relaxed truncation of an in-range value is exact.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.ne
          (i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 42.5 0 0 0)))
          (i32.const 42))
      (then unreachable))))
