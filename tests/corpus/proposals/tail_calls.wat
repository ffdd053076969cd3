;; Tail calls (return_call): a million calls deep would overflow the stack without them.
(module
  (memory (export "memory") 1)
  (func $count (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 42))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "_start")
    (if (i32.ne (call $count (i32.const 1000000)) (i32.const 42)) (then unreachable))))
