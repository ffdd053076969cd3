;; Garbage collection: a struct allocated and read back.
(module
  (memory (export "memory") 1)
  (type $pair (struct (field i32) (field i32)))
  (func (export "_start")
    (local $p (ref $pair))
    (local.set $p (struct.new $pair (i32.const 40) (i32.const 2)))
    (if (i32.ne (i32.add (struct.get $pair 0 (local.get $p)) (struct.get $pair 1 (local.get $p))) (i32.const 42))
      (then unreachable))))
