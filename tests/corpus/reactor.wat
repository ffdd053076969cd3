;; A reactor: `_initialize` (its constructors) sets what `answer` returns, 42; without it,
;; 0. Every engine runs `_initialize` before the entry function, as their CLIs do.
(module
  (memory (export "memory") 1)
  (global $answer (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $answer (i32.const 42)))
  (func (export "answer") (result i32)
    (global.get $answer)))
