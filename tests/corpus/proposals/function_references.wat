;; Typed function references: call_ref on a non-null typed reference.
(module
  (memory (export "memory") 1)
  (type $answer (func (result i32)))
  (func $forty_two (type $answer) (i32.const 42))
  (elem declare func $forty_two)
  (func (export "_start")
    (if (i32.ne (call_ref $answer (ref.func $forty_two)) (i32.const 42)) (then unreachable))))
