;; Exception handling (try_table, throw): a thrown i32 is caught with its value.
(module
  (tag $oops (param i32))
  (memory (export "memory") 1)
  (func $thrower (throw $oops (i32.const 7)))
  (func (export "_start")
    (block $caught (result i32)
      (try_table (catch $oops $caught) (call $thrower))
      unreachable)
    (if (i32.ne (i32.const 7)) (then unreachable))))
