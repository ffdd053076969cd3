;; Prints "started", sleeps 5 s in a host call (WASI poll_oneoff on the monotonic clock),
;; then reads past the end of its memory: a trap. The signal tests send fault signals
;; while it sleeps; its own fault afterwards must still be a trap.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "started\n")
  ;; The iovec of "started\n": its address and length.
  (data (i32.const 16) "\00\00\00\00\08\00\00\00")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
    ;; One subscription at 64 (48 bytes): tag 0 (clock) at +8, clock id 1 (monotonic)
    ;; at +16, timeout in ns at +24, precision at +32, flags 0 (relative) at +40.
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.const 5000000000))
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 200)))
    (drop (i32.load (i32.const 0x7ffffff0)))))
