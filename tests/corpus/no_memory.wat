;; A command with no memory and no imports: it uses no WASI function, so nothing needs a
;; memory. `seven` returns 7 (run with --entry seven: the exit status).
(module
  (func (export "_start"))
  (func (export "seven") (result i32)
    (i32.const 7)))
