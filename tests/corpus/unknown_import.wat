;; Imports a function no engine provides; every engine must refuse it before it runs,
;; naming the import.
(module
  (import "env" "nothing_here" (func $nothing_here))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $nothing_here)))
