;; Grows memory one 64 KiB page at a time, up to 100 pages, and exits with the number
;; of pages it reached: 100 without a cap, fewer under a memory cap.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $capped
      (loop $grow
        (br_if $capped (i32.ge_u (memory.size) (i32.const 100)))
        (br_if $capped (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
    (call $proc_exit (memory.size))))
