;; The core module of a WASI 0.2 command component (`wasi:cli/run`) that prints its
;; working directory (`wasi:cli/environment.initial-cwd`) as `cwd:<path>` (`cwd:none`
;; without one); made a component by tests/support/wasi_components.rs.
(module
  (import "wasi:cli/environment@0.2.12" "initial-cwd" (func $initial_cwd (param i32)))
  (import "wasi:cli/stdout@0.2.12" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write_and_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_output (param i32)))

  (memory (export "memory") 1)
  ;; 16: return area; 64: text; 1024 up: the bump heap of cabi_realloc.
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 64) "cwd:")
  (data (i32.const 72) "none")
  (data (i32.const 80) "\n")

  (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
    (local $at i32)
    (local.set $at
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $at) (local.get $size)))
    (local.get $at))

  (func $write (param $out i32) (param $ptr i32) (param $len i32)
    (call $write_and_flush (local.get $out) (local.get $ptr) (local.get $len) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then unreachable)))

  (func (export "wasi:cli/run@0.2.12#run") (result i32)
    (local $out i32)
    (local.set $out (call $get_stdout))
    (call $write (local.get $out) (i32.const 64) (i32.const 4))
    (call $initial_cwd (i32.const 16))
    (if (i32.load8_u (i32.const 16))
      (then (call $write (local.get $out) (i32.load offset=4 (i32.const 16)) (i32.load offset=8 (i32.const 16))))
      (else (call $write (local.get $out) (i32.const 72) (i32.const 4))))
    (call $write (local.get $out) (i32.const 80) (i32.const 1))
    (call $drop_output (local.get $out))
    (i32.const 0)))
