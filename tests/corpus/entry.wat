;; `_start` returns normally (status 0); `answer` is an alternative entry returning 42;
;; `takes_param` and `three_results` are exports no engine may call as an entry.
(module
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "answer") (result i32)
    i32.const 42)
  (func (export "takes_param") (param i32))
  (func (export "three_results") (result i64 i64 i64)
    i64.const 1
    i64.const 2
    i64.const 3))
