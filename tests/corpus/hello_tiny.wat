;; The smallest hello: one fd_write of "hello from wasm\n" to stdout, then return (exit 0).
;; About the size of the module the concurrency issue was measured with (134 bytes), so
;; the stress figures compare the shims rather than the compiler.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: base 16, length 16; the text at 16.
  (data (i32.const 0) "\10\00\00\00\10\00\00\00")
  (data (i32.const 16) "hello from wasm\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
