;; Traps on `unreachable` after printing nothing.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    unreachable))
