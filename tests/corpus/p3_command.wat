;; The core module of a WASI 0.3 command component: `wasi:cli/run@0.3.0`'s `run` is an
;; async function (component-model async, the callback form), which returns `err` through
;; `task.return` and exits at once; a host that runs it ends with status 1. Made a
;; component by tests/support/wasi_components.rs with the WASI 0.3 WIT that the
;; wasmtime-wasi crate ships.
(module
  (import "[export]wasi:cli/run@0.3.0" "[task-return]run" (func $task_return (param i32)))
  (memory (export "memory") 1)
  (func (export "[async-lift]wasi:cli/run@0.3.0#run") (result i32)
    ;; result::err, then EXIT (callback code 0): nothing left to wait for.
    (call $task_return (i32.const 1))
    (i32.const 0))
  (func (export "[callback][async-lift]wasi:cli/run@0.3.0#run") (param i32 i32 i32) (result i32)
    (i32.const 0)))
