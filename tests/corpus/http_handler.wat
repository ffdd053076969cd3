;; The core module of a wasi:http/proxy component (`wasi:http/incoming-handler`), made a
;; component by the tests with the wasi:http WIT (tests/support/wasi_components.rs):
;;   GET  /       → 200 "hello from wasi:http\n"
;;   POST /       → 200, the request body streamed back chunk by chunk
;;   any  /slow   → the same, after one second (a request in flight for the stop tests)
;;   any  /trap   → `unreachable` before any response (the server answers 500)
;; Functions are the canonical ABI's lowered imports; results larger than one value come
;; back through a pointer ($ret). Strings and lists the host returns are allocated with
;; the bump allocator `cabi_realloc`, reset after every body chunk.
(module
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response"
    (func $response_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code"
    (func $set_status (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body"
    (func $response_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write"
    (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish"
    (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.method"
    (func $request_method (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query"
    (func $request_path (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.consume"
    (func $request_consume (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-body.stream"
    (func $body_stream (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-body"
    (func $drop_incoming_body (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read"
    (func $blocking_read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write_and_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]input-stream" (func $drop_input (param i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_output (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.12" "subscribe-duration"
    (func $subscribe_duration (param i64) (result i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.12" "[resource-drop]pollable" (func $drop_pollable (param i32)))

  (memory (export "memory") 32)
  ;; 16: return area; 64: constants; 65536 up: the bump heap.
  (global $ret i32 (i32.const 16))
  (global $heap_start i32 (i32.const 65536))
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 64) "/trap")
  (data (i32.const 80) "/slow")
  (data (i32.const 96) "hello from wasi:http\n")

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $at i32)
    ;; Round up to the alignment, then grow the memory if the block does not fit.
    (local.set $at
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $at) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (if (local.get $old_size)
      (then (memory.copy (local.get $at) (local.get $old) (local.get $old_size))))
    (local.get $at))

  ;; Whether the string at $a ($a_len bytes) equals the one at $b ($b_len bytes).
  (func $equal (param $a i32) (param $a_len i32) (param $b i32) (param $b_len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $a_len) (local.get $b_len)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $a_len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; Writes $len bytes at $ptr to the stream, 4096 at a time (the most one
  ;; blocking-write-and-flush takes).
  (func $write (param $stream i32) (param $ptr i32) (param $len i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (i32.const 4096) (local.get $len) (i32.gt_u (local.get $len) (i32.const 4096))))
        (call $write_and_flush (local.get $stream) (local.get $ptr) (local.get $n) (global.get $ret))
        (if (i32.load8_u (global.get $ret)) (then unreachable))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $next))))

  ;; Streams the request's body into $out, one chunk at a time.
  (func $echo (param $request i32) (param $out i32)
    (local $body i32) (local $in i32)
    (call $request_consume (local.get $request) (global.get $ret))
    (if (i32.load8_u (global.get $ret)) (then unreachable))
    (local.set $body (i32.load offset=4 (global.get $ret)))
    (call $body_stream (local.get $body) (global.get $ret))
    (if (i32.load8_u (global.get $ret)) (then unreachable))
    (local.set $in (i32.load offset=4 (global.get $ret)))
    (block $end
      (loop $next
        (call $blocking_read (local.get $in) (i64.const 65536) (global.get $ret))
        ;; An error is the end of the body (stream-error.closed).
        (br_if $end (i32.load8_u (global.get $ret)))
        (call $write (local.get $out)
          (i32.load offset=4 (global.get $ret)) (i32.load offset=8 (global.get $ret)))
        (global.set $heap (global.get $heap_start))
        (br $next)))
    (call $drop_input (local.get $in))
    (call $drop_incoming_body (local.get $body)))

  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $outparam i32)
    (local $path i32) (local $path_len i32) (local $response i32) (local $body i32) (local $out i32)
    (local $pollable i32)
    (call $request_path (local.get $request) (global.get $ret))
    (if (i32.load8_u (global.get $ret))
      (then
        (local.set $path (i32.load offset=4 (global.get $ret)))
        (local.set $path_len (i32.load offset=8 (global.get $ret)))))
    (if (call $equal (local.get $path) (local.get $path_len) (i32.const 64) (i32.const 5))
      (then unreachable))
    (if (call $equal (local.get $path) (local.get $path_len) (i32.const 80) (i32.const 5))
      (then
        (local.set $pollable (call $subscribe_duration (i64.const 1000000000)))
        (call $block (local.get $pollable))
        (call $drop_pollable (local.get $pollable))))
    ;; The response's head first, then its body.
    (local.set $response (call $response_new (call $fields_new)))
    (drop (call $set_status (local.get $response) (i32.const 200)))
    (call $response_body (local.get $response) (global.get $ret))
    (local.set $body (i32.load offset=4 (global.get $ret)))
    (call $outparam_set (local.get $outparam) (i32.const 0) (local.get $response)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (global.get $ret))
    (local.set $out (i32.load offset=4 (global.get $ret)))
    (call $request_method (local.get $request) (global.get $ret))
    (if (i32.eq (i32.load8_u (global.get $ret)) (i32.const 2))
      (then (call $echo (local.get $request) (local.get $out)))
      (else (call $write (local.get $out) (i32.const 96) (i32.const 21))))
    (call $drop_output (local.get $out))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (global.get $ret))))
