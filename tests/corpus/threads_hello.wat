;; The imports of a wasm32-wasip1-threads program (a shared memory from `env`,
;; `wasi::thread-spawn`), printing `hello from threads` without spawning: Wasmer runs
;; such programs on wasmer-wasix, the other engines refuse the import.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (data (i32.const 16) "hello from threads\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 19))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "wasi_thread_start") (param i32 i32)))
