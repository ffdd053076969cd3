;; A reactor: `_initialize` (its constructors) sets what `answer` returns, 42; without it,
;; 0. Run twice, `_initialize` traps. Every engine runs it once before the entry function,
;; as their CLIs do.
(module
  (memory (export "memory") 1)
  (global $answer (mut i32) (i32.const 0))
  (func (export "_initialize")
    (if (global.get $answer) (then unreachable))
    (global.set $answer (i32.const 42)))
  (func (export "answer") (result i32)
    (global.get $answer)))
