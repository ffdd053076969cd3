;; Threads (shared memory and atomics, no thread spawning): an atomic add.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 40)))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 2)))
    (if (i32.ne (i32.atomic.load (i32.const 0)) (i32.const 42)) (then unreachable))))
