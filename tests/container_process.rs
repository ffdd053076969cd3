//! What a wasm container's process is made of, through the shim's task API: its threads,
//! whose number must not grow with the node's CPUs (a node has many containers).

mod support;

use support::stress::shim::ShimServer;

/// The names of the threads of `pid`.
fn thread_names(pid: i32) -> Vec<String> {
    support::stress::leaks::per_thread(pid, "comm").iter().map(|name| name.trim_end().to_string()).collect()
}

/// Once a `wasi:cli` program runs, a wasm container has at most two threads, whatever the
/// node's CPUs: the program's, and the one worker of the runtime wasmtime-wasi or
/// wasmer-wasix does its I/O on (WAMR has none). (A served wasi:http component has a
/// worker per CPU on purpose, README "wasi:http".) Before, a wasmtime container kept two more pools of a
/// thread per CPU for its whole life (64 each on a 64-core node; two each here):
/// wasmtime-wasi's own I/O runtime, made when none is given, and rayon's global pool,
/// which wasmtime compiles on.
#[test]
fn a_wasm_containers_threads_do_not_grow_with_the_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (engine, _) in support::engines() {
        let (shim, id, pid) = ShimServer::running_loop(&format!("process-threads-{engine}"), engine);
        // loop.wasm printed `started` through WASI: its I/O runtime exists by now, and the
        // compile's threads had ended before it started.
        let names = thread_names(pid);
        assert!(names.len() <= 2, "{engine}, {cpus} CPUs here: the container's threads: {names:?}");
        assert_eq!(shim.end_and_delete(&id, libc::SIGKILL), 137, "{engine}");
        shim.shutdown().unwrap();
    }
}
